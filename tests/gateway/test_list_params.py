"""ListImages' query parameters parsed into the typed catalog request (gateway/http/list_params.py),
without a server: values, messages and the order in which IMGAPI refuses them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from imgapi.v1 import catalog_pb2

from gateway.http.list_params import (
    MAX_LIMIT,
    fill_list_request,
    parse_date_marker,
    parse_limit,
    parse_sort,
    parse_state,
)
from gateway.http.query import Query
from imgapi_common.errors import ImgapiError

L = catalog_pb2.ListImagesRequest
UUID = "86055c40-2547-11e2-8a6b-4bb37edc84ba"


@pytest.mark.parametrize(
    ("raw", "n"),
    [("", MAX_LIMIT), ("0", MAX_LIMIT), ("2", 2), ("1.9", 1), ("5000", MAX_LIMIT), ("1e3", 1000), (" 3 ", 3)],
)
def test_limit(raw: str, n: int) -> None:
    assert parse_limit(raw) == n


@pytest.mark.parametrize("raw", ["abc", "NaN", "-1", "1x", "-0.5"])
def test_limit_refused_naming_state(raw: str) -> None:
    with pytest.raises(ImgapiError) as ei:
        parse_limit(raw)
    assert ei.value.body() == {
        "code": "InvalidParameter",
        "message": f'invalid limit: "{raw}"',
        "errors": [{"field": "state", "code": "Invalid"}],  # sic: IMGAPI names the wrong field
    }


def test_state_and_sort() -> None:
    assert parse_state("") == "active" and parse_state("all") == "all"
    for bad in ("Active", "ALL", " active"):
        with pytest.raises(ImgapiError):
            parse_state(bad)
    assert parse_sort("") is False and parse_sort("published_at.asc") is False
    assert parse_sort("published_at.desc") is True and parse_sort("published_at.x") is True
    with pytest.raises(ImgapiError) as ei:
        parse_sort("name.asc")
    assert ei.value.message == "invalid 'sort': not a valid sorting attribute: 'name'"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2012-11-01", datetime(2012, 11, 1, tzinfo=UTC)),
        ("2012-11-02T23:46:45.992+01:00", datetime(2012, 11, 2, 22, 46, 45, 992000, tzinfo=UTC)),
        ("2012-11-02t22:46:45.9929z", datetime(2012, 11, 2, 22, 46, 45, 992000, tzinfo=UTC)),
        ("Thu, 01 Nov 2012 00:00:00 GMT", datetime(2012, 11, 1, tzinfo=UTC)),
        ("12345", datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        ("0000", datetime(1, 1, 1, tzinfo=UTC)),
        ("yesterday", None),
        ("2012-13-45", None),
    ],
)
def test_date_marker(raw: str, expected: datetime | None) -> None:
    assert parse_date_marker(raw) == expected


def _filled(query: str, mode: str = "dc", authenticated: bool = False) -> catalog_pb2.ListImagesRequest:
    req = L()
    fill_list_request(req, Query(query), mode, authenticated)
    return req


def test_typed_fields() -> None:
    req = _filled(
        f"limit=10&state=all&public=false&sort=published_at.desc&marker={UUID}&inclAdminFields=true"
    )
    assert (req.limit, req.state, req.public, req.descending, req.incl_admin_fields) == (
        10,
        L.STATE_ALL,
        False,
        True,
        True,
    )
    assert req.WhichOneof("marker") == "marker_uuid" and req.marker_uuid == UUID
    req = _filled("marker=2012-11-01")
    assert req.marker_published_at.ToDatetime(tzinfo=UTC) == datetime(2012, 11, 1, tzinfo=UTC)
    assert not req.HasField("public") and req.state == L.STATE_ACTIVE


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("inclAdminFields=x&limit=x", "inclAdminFields"),
        ("limit=x&state=x&public=x", "state"),  # the limit's error names state
        ("state=x&public=x&sort=x&marker=x", "state"),
        ("public=&sort=x&marker=x", "public"),
        ("sort=x&marker=x", "sort"),
        ("marker=x", "marker"),
    ],
)
def test_first_refusal_in_order(query: str, field: str) -> None:
    with pytest.raises(ImgapiError) as ei:
        _filled(query)
    assert [e.field for e in ei.value.errors] == [field]


def test_anonymous_caller_of_a_public_server() -> None:
    with pytest.raises(ImgapiError) as ei:
        _filled("inclAdminFields=true&limit=x", mode="public")
    assert (ei.value.code, ei.value.http_status) == ("UnauthorizedError", 401)
    assert _filled("inclAdminFields=true", mode="public", authenticated=True).incl_admin_fields
    # hidden states: answered [] by the catalog, so what follows is not checked
    assert _filled("state=disabled&public=x&sort=x&marker=x", mode="private").state == L.STATE_DISABLED
    with pytest.raises(ImgapiError):
        _filled("state=disabled&public=x", mode="private", authenticated=True)
