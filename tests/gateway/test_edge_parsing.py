"""Query values and headers the gateway parses into typed catalog requests, refused in IMGAPI's
order: the checks IMGAPI runs before a parameter (channel, load, owner, the earlier parameters)
still come first."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.gateway.conftest import new_uuid
from tests.gateway.helpers import EMPEROR, LUKE, VADER, create, err

GIB20 = 20 * 1024 * 1024 * 1024


def test_list_messages(dc: httpx.Client) -> None:
    body = err(dc.get("/images?limit=1x"), 422, "InvalidParameter", ["state"])
    assert body["message"] == 'invalid limit: "1x"'
    body = err(dc.get("/images?sort=name.asc"), 422, "InvalidParameter", ["sort"])
    assert body["message"] == "invalid 'sort': not a valid sorting attribute: 'name'"
    body = err(dc.get("/images?marker=2012-13-45"), 422, "InvalidParameter", ["marker"])
    assert body["message"] == 'invalid value for "marker" param: "2012-13-45" is not a UUID or date string'
    body = err(dc.get("/images?public=&sort=name"), 422, "InvalidParameter", ["public"])
    assert body["message"] == 'invalid value for "public" param: "" is not a boolean'


def test_list_date_marker_and_limit(dc: httpx.Client) -> None:
    page = dc.get("/images?state=all&marker=1970-01-01&limit=2.9")
    assert page.status_code == 200, page.text
    assert len(page.json()) == 2
    assert len(dc.get("/images?state=all&marker=12345&sort=published_at.desc&limit=1").json()) == 1
    assert dc.get("/images?state=all&marker=9999-12-31T23:59:59.999Z").json() == []
    assert dc.get("/images?state=all&marker=1970-01-01&sort=published_at.desc").json() == []


def test_list_channel_error_comes_first(pub: httpx.Client) -> None:
    body = err(pub.get("/images?channel=bogus&limit=x"), 422, "ValidationFailed", ["channel"])
    assert body["message"] == "unknown channel: bogus"


def test_list_unauthorized_admin_fields_before_limit(pub: httpx.Client) -> None:
    err(pub.get("/images?inclAdminFields=true&limit=x"), 401, "UnauthorizedError")
    # an anonymous caller asking for hidden states gets [] before public/sort/marker are checked
    assert pub.get("/images?state=disabled&public=x&sort=x&marker=x").json() == []
    err(pub.get("/images?state=all&public=x"), 422, "InvalidParameter", ["public"])


def test_get_admin_fields_after_load(pub: httpx.Client) -> None:
    err(pub.get(f"/images/{new_uuid()}?inclAdminFields=true"), 404, "ResourceNotFound")
    err(pub.get(f"/images/{new_uuid()}?inclAdminFields=x"), 404, "ResourceNotFound")


def test_delete_force_all_channels_after_load_and_owner(dc: httpx.Client) -> None:
    img = create(dc, acl=[VADER])
    u = img["uuid"]
    err(dc.delete(f"/images/{u}?account=bad&force_all_channels=x"), 422, "InvalidParameter", ["account"])
    err(dc.delete(f"/images/{new_uuid()}?force_all_channels=x"), 404, "ResourceNotFound")
    err(dc.delete(f"/images/{u}?account={EMPEROR}&force_all_channels=x"), 404, "ResourceNotFound")
    err(
        dc.delete(f"/images/{u}?account={LUKE}&force_all_channels=x"),
        422,
        "InvalidParameter",
        ["force_all_channels"],
    )
    assert dc.get(f"/images/{u}").status_code == 200


def _put_declared(c: httpx.Client, target: str, headers: dict[str, str]) -> httpx.Response:
    """A PUT declaring a Content-Length it never sends (no HTTP client library sends that): the
    gateway must answer before any byte arrives."""
    url = c.base_url
    lines = [f"PUT {target} HTTP/1.1", f"Host: {url.host}:{url.port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in {**dict(c.headers), **headers}.items() if k.lower() != "connection"]
    with socket.create_connection((url.host, url.port or 80), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b"x")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response_headers = [(k, v) for k, _, v in (h.partition(": ") for h in header_lines)]
    return httpx.Response(int(status_line.split()[1]), headers=response_headers, content=body)


@pytest.mark.parametrize(
    ("path", "query", "headers", "maximum", "what"),
    [
        ("file", "compression=gzip", {}, GIB20, "file"),
        ("icon", "", {"Content-Type": "image/png"}, 128 * 1024, "icon"),
    ],
)
def test_declared_length_above_the_maximum(
    dc: httpx.Client, path: str, query: str, headers: dict[str, str], maximum: int, what: str
) -> None:
    u = create(dc)["uuid"]
    too_big = {**headers, "Content-Length": str(maximum + 1)}
    body = err(_put_declared(dc, f"/images/{u}/{path}?{query}", too_big), 400, "Upload")
    assert (
        body["message"] == f"{what} size, {maximum + 1}, exceeds the maximum allowed {what} size, {maximum}"
    )
    # the storage check comes first
    err(
        _put_declared(dc, f"/images/{u}/{path}?{query}&storage=bogus", too_big),
        422,
        "InvalidParameter",
        ["storage"],
    )


def test_acl_body_refused_after_load_and_owner(dc: httpx.Client) -> None:
    img = create(dc, acl=[VADER])
    u = img["uuid"]
    err(dc.post(f"/images/{new_uuid()}/acl", json=["nope"]), 404, "ResourceNotFound")
    err(dc.post(f"/images/{u}/acl?account={VADER}", json=["nope"]), 404, "ResourceNotFound")
    body = err(dc.post(f"/images/{u}/acl?account={LUKE}", json=[VADER, "nope", 3]), 422, "InvalidParameter")
    assert body["message"] == 'invalid image "acl" (item 1 is not a UUID): nope'
    # an unreadable body (nested too deeply) is refused before the image is looked at
    deep: list[object] = []
    for _ in range(70):
        deep = [deep]
    err(dc.post(f"/images/{new_uuid()}/acl", json=deep), 400, "InvalidContent")
    # a lone surrogate the body held is echoed as U+FFFD
    bad = {"Content-Type": "application/json"}
    body = err(dc.post(f"/images/{u}/acl", content=b'["\\ud800"]', headers=bad), 422, "InvalidParameter")
    assert body["message"] == 'invalid image "acl" (item 0 is not a UUID): \ufffd'


def test_channel_add_body_refused_after_load_and_cond(pub: httpx.Client) -> None:
    m = {"name": "edge", "version": "1.0.0", "type": "zone-dataset", "os": "smartos", "public": True}
    img = pub.post(f"/images?channel=staging&account={LUKE}", json=m).json()
    u = img["uuid"]
    err(
        pub.post(f"/images/{new_uuid()}?action=channel-add&channel=staging", json={}), 404, "ResourceNotFound"
    )
    # (an unactivated image is not visible to another account)
    err(
        pub.post(f"/images/{u}?action=channel-add&channel=staging&account={VADER}", json={}),
        404,
        "ResourceNotFound",
    )
    stale = {"If-Match": '"0000"'}
    err(
        pub.post(f"/images/{u}?action=channel-add&channel=staging", json={}, headers=stale),
        412,
        "PreconditionFailed",
    )
    body = err(
        pub.post(f"/images/{u}?action=channel-add&channel=staging", json={"channel": 5}),
        422,
        "ValidationFailed",
    )
    assert body["message"] == "unknown channel: 5"
