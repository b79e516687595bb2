"""gateway/http/conditional.py: what the gateway passes on and answers for conditional requests.

The conditional headers go to the catalog parsed (it evaluates them); the gateway itself makes
the ``Etag`` / ``Last-Modified`` validators of a file or icon answer and decides ``If-Range``.
"""

from __future__ import annotations

import time

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from imgapi.v1 import common_pb2
from starlette.datastructures import Headers

from gateway.http.conditional import (
    entity_tags,
    http_date,
    http_date_of,
    if_range_matches,
    preconditions_from,
    validators,
)


def test_the_four_conditional_headers_are_parsed() -> None:
    headers = Headers(
        {
            "If-Match": '"a", W/"b" ,c,"*"',
            "If-None-Match": "*",
            "If-Modified-Since": "Wed, 01 May 2024 12:00:00 GMT",
            "If-Unmodified-Since": "not a date",
            "If-Range": '"ignored"',
        }
    )
    p = preconditions_from(headers, common_pb2.Preconditions.SUBJECT_FILE)
    E = common_pb2.EntityTag
    assert p == common_pb2.Preconditions(
        if_match=common_pb2.EntityTagCondition(
            any=True,
            tags=[E(opaque="a"), E(opaque="b", weak=True), E(opaque="c")],
            header='"a", W/"b" ,c,"*"',
        ),
        if_none_match=common_pb2.EntityTagCondition(any=True, header="*"),
        if_modified_since=common_pb2.DateCondition(
            time=Timestamp(seconds=1714564800), header="Wed, 01 May 2024 12:00:00 GMT"
        ),
        subject=common_pb2.Preconditions.SUBJECT_FILE,
    )
    assert not p.HasField("if_unmodified_since")  # not a date: no condition


def test_no_conditional_headers_make_empty_preconditions_on_the_image() -> None:
    for headers in ({}, {"If-Match": "", "If-None-Match": "", "If-Modified-Since": ""}):
        p = preconditions_from(Headers(headers))
        assert p == common_pb2.Preconditions(subject=common_pb2.Preconditions.SUBJECT_IMAGE)


def test_entity_tag_quirks() -> None:
    """Every comma splits (even inside quotes); all the quotes around an entry go."""
    c = entity_tags('"a,b", ""x"", W/*,  ,W/')
    assert c.any
    assert [(t.opaque, t.weak) for t in c.tags] == [
        ("a", False),
        ("b", False),
        ("x", False),
        ("", False),
        ("", True),
    ]


def test_http_dates() -> None:
    d = http_date("Sun, 06 Nov 1994 08:49:37 +0100")
    assert d is not None and d.time.seconds == 784111777 - 3600
    zoneless = http_date("06 Nov 1994 08:49:37 -0000")
    assert zoneless is not None and zoneless.time.seconds == 784111777
    far = http_date("Fri, 31 Dec 9999 23:59:59 -2359")
    assert far is not None and far.time.seconds == 253402300799 + 86340
    for bad in (
        "",
        "yesterday",
        "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
        "Mon, 32 Jan 2024 00:00:00 GMT",
    ):
        assert http_date(bad) is None, bad


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
