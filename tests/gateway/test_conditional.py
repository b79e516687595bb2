"""gateway/http/conditional.py: what the gateway passes on and answers for conditional requests.

The conditional headers go to the catalog untouched (it evaluates them); the gateway itself makes
the ``Etag`` / ``Last-Modified`` validators of a file or icon answer and decides ``If-Range``.
"""

from __future__ import annotations

import time

import pytest
from imgapi.v1 import common_pb2
from starlette.datastructures import Headers

from gateway.http.conditional import http_date_of, if_range_matches, preconditions_from, validators


def test_the_four_conditional_headers_are_passed_as_received() -> None:
    headers = Headers(
        {
            "If-Match": '"a", "b"',
            "If-None-Match": "*",
            "If-Modified-Since": "Wed, 01 May 2024 12:00:00 GMT",
            "If-Unmodified-Since": "not a date",
            "If-Range": '"ignored"',
        }
    )
    p = preconditions_from(headers, common_pb2.Preconditions.SUBJECT_FILE)
    assert p == common_pb2.Preconditions(
        if_match='"a", "b"',
        if_none_match="*",
        if_modified_since="Wed, 01 May 2024 12:00:00 GMT",
        if_unmodified_since="not a date",
        subject=common_pb2.Preconditions.SUBJECT_FILE,
    )


def test_no_conditional_headers_make_empty_preconditions_on_the_image() -> None:
    p = preconditions_from(Headers({}))
    assert p == common_pb2.Preconditions(subject=common_pb2.Preconditions.SUBJECT_IMAGE)
    assert (p.if_match, p.if_none_match, p.if_modified_since, p.if_unmodified_since) == ("", "", "", "")


def test_http_date_of_a_stored_time() -> None:
    assert http_date_of("2024-05-01T12:00:00.123Z") == "Wed, 01 May 2024 12:00:00 GMT"
    assert http_date_of("2024-05-01T14:00:00+02:00") == "Wed, 01 May 2024 12:00:00 GMT"
    assert http_date_of("2024-05-01T12:00:00") == "Wed, 01 May 2024 12:00:00 GMT"  # naive: UTC
    assert http_date_of("") == ""
    assert http_date_of("yesterday") == ""


def test_validators() -> None:
    assert validators("abc", "2024-05-01T12:00:00Z") == {
        "Etag": "abc",
        "Last-Modified": "Wed, 01 May 2024 12:00:00 GMT",
    }
    assert validators("abc", "") == {"Etag": "abc"}
    assert validators("abc", "garbage") == {"Etag": "abc"}


def test_if_range() -> None:
    date = "Wed, 01 May 2024 12:00:00 GMT"
    assert if_range_matches(None, "e", date)
    assert if_range_matches('  "e"  ', "e", date)
    assert if_range_matches("e", "e", date)  # an unquoted ETag is compared as one
    assert not if_range_matches('W/"e"', "e", date)
    assert if_range_matches(date, "e", date)
    assert if_range_matches("Wed, 01 May 2024 14:00:00 +0200", "e", date)
    assert not if_range_matches(date, "e", "")  # no Last-Modified: a date never matches
    assert not if_range_matches("Wed, 99 Foo 2024 12:00:00 GMT", "e", date)
    assert not if_range_matches("Wed,", "e", date)


def test_http_date_of_does_not_depend_on_the_server_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert http_date_of("2024-05-01T12:00:00") == "Wed, 01 May 2024 12:00:00 GMT"
        assert http_date_of("2024-05-01T12:00:00Z") == "Wed, 01 May 2024 12:00:00 GMT"
    finally:
        monkeypatch.undo()
        time.tzset()
