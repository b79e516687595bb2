"""Routing, version negotiation and the headers every response carries."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.gateway.conftest import Stack

BASE = "c58161c0-2547-11e2-a75e-9fdca1940570"


def err(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, object] = r.json()
    assert body["code"] == code, body
    return body


def test_common_headers(dc: httpx.Client) -> None:
    r = dc.get("/ping", headers={"x-request-id": "req-123"})
    assert r.status_code == 200
    h = r.headers
    assert h["server"] == "imgapi/4.11.0"
    assert h["x-request-id"] == "req-123"
    assert re.fullmatch(r"\d+", h["x-response-time"])
    assert h["x-server-name"] == "imgapi0"
    assert h["connection"] == "keep-alive"
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", h["date"])
    assert int(h["content-length"]) == len(r.content)
    assert "content-md5" not in h
    assert r.text.startswith('{\n  "ping": "pong"')


def test_request_id_header_alias_and_generated(dc: httpx.Client) -> None:
    assert dc.get("/ping", headers={"request-id": "abc"}).headers["x-request-id"] == "abc"
    rid = dc.get("/ping").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", rid)


def test_error_responses_carry_common_headers(dc: httpx.Client) -> None:
    r = dc.get("/nope", headers={"x-request-id": "e1"})
    assert r.headers["x-request-id"] == "e1" and r.headers["server"] == "imgapi/4.11.0"


@pytest.mark.parametrize("path", ["/nope", "/images/x/y/z", "/imagesx", "/ping/", "/channels"])
def test_unknown_path_404(dc: httpx.Client, path: str) -> None:
    body = err(dc.get(path + "?a=b"), 404, "ResourceNotFound")
    assert body["message"] == f"{path} does not exist"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/images", "GET, POST"),
        ("DELETE", "/images", "GET, POST"),
        ("PUT", f"/images/{BASE}", "GET, POST, DELETE"),
        ("POST", f"/images/{BASE}/file", "PUT, GET"),
        ("POST", f"/images/{BASE}/icon", "PUT, GET, DELETE"),
        ("GET", f"/images/{BASE}/acl", "POST"),
        ("HEAD", "/images", "GET, POST"),
        ("HEAD", "/ping", "GET"),
        ("OPTIONS", "/ping", "GET"),
        ("DELETE", "/state", "GET, POST"),
    ],
)
def test_method_not_allowed(dc: httpx.Client, method: str, path: str, allow: str) -> None:
    r = dc.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    if method != "HEAD":
        assert r.json() == {"code": "MethodNotAllowedError", "message": f"{method} is not allowed"}


def test_trailing_slash_is_the_uuid_route(dc: httpx.Client) -> None:
    body = err(dc.get("/images/"), 404, "ResourceNotFound")
    assert body["message"] == "/images/ does not exist"


def test_repeated_slashes_tolerated(dc_stack: Stack) -> None:
    with dc_stack.client() as c:
        url = httpx.URL(dc_stack.base_url).copy_with(raw_path=b"//images")
        assert c.get(url).status_code == 200


@pytest.mark.parametrize("bad", ["not-a-uuid", BASE.upper(), BASE + "0", BASE[:-1]])
def test_malformed_uuid_is_404_with_url(dc: httpx.Client, bad: str) -> None:
    body = err(dc.get(f"/images/{bad}?account=x"), 404, "ResourceNotFound")
    assert body["message"] == f"/images/{bad}?account=x does not exist"
    # every :uuid route checks the shape
    err(dc.get(f"/images/{bad}/file"), 404, "ResourceNotFound")
    err(dc.post(f"/images/{bad}?action=activate", json={}), 404, "ResourceNotFound")
    err(dc.delete(f"/images/{bad}"), 404, "ResourceNotFound")


def test_examples_3_1_malformed_uuid(dc: httpx.Client) -> None:
    r = dc.get("/images/not-a-uuid")
    assert r.status_code == 404
    assert r.text == '{\n  "code": "ResourceNotFound",\n  "message": "/images/not-a-uuid does not exist"\n}'
    assert r.headers["content-length"] == "82"


def test_bad_percent_encoding_is_bad_request(dc: httpx.Client) -> None:
    err(dc.get("/images/%ff%fe"), 400, "BadRequestError")


@pytest.mark.parametrize("rng", ["~3", "~99", "garbage"])
def test_invalid_version(dc: httpx.Client, rng: str) -> None:
    body = err(dc.get("/images", headers={"Accept-Version": rng}), 400, "InvalidVersion")
    assert body["message"] == f"{rng} is not supported by GET /images"
    err(dc.get("/ping", headers={"Accept-Version": rng}), 400, "InvalidVersion")
    # Routing errors come first.
    err(dc.get("/nope", headers={"Accept-Version": rng}), 404, "ResourceNotFound")


def test_version_before_uuid_shape(dc: httpx.Client) -> None:
    err(dc.get("/images/bad", headers={"Accept-Version": "~9"}), 400, "InvalidVersion")


def test_datasets_redirects(dc: httpx.Client) -> None:
    cases = {
        "/datasets": "/images",
        f"/datasets/{BASE}": f"/images/{BASE}",
        "/datasets/base:1.8.1": "/images/?name=base&version=1.8.1",
        "/datasets/sdc:sdc:base": "/images/?name=base",
        "/datasets/sdc:sdc:base:1.8.1": "/images/?name=base&version=1.8.1",
        "/datasets/whatever": "/images/?name=whatever",
        "/datasets?name=foo": "/images",
    }
    for path, location in cases.items():
        r = dc.get(path)
        assert r.status_code == 301, path
        assert r.headers["location"] == location
        assert r.headers["content-length"] == "0" and r.content == b""


def test_docs_and_root(dc: httpx.Client) -> None:
    for p in ("/", "/docs"):
        r = dc.get(p)
        assert r.status_code == 301 and r.headers["location"] == "/docs/"
    assert dc.get("/docs/").status_code == 200
    err(dc.get("/docs/nope.html"), 404, "ResourceNotFound")
    err(dc.get("/favicon.ico"), 404, "ResourceNotFound")


def test_clone_not_mounted_outside_dc(pub: httpx.Client, priv: httpx.Client) -> None:
    for c in (pub, priv):
        body = err(c.post(f"/images/{BASE}/clone", json={}), 404, "ResourceNotFound")
        assert body["message"] == f"/images/{BASE}/clone does not exist"


def test_channels_route_only_with_channels(dc: httpx.Client, pub: httpx.Client) -> None:
    err(dc.get("/channels"), 404, "ResourceNotFound")
    assert pub.get("/channels").status_code == 200


def test_keep_alive_reuses_connection(dc_stack: Stack) -> None:
    with dc_stack.client() as c:
        for _ in range(5):
            assert c.get("/ping").status_code == 200
