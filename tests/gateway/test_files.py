"""AddImageFile / GetImageFile (+ Range) / AddImageIcon / GetImageIcon / DeleteImageIcon over HTTP,
against the real gateway + catalog + blob services."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import uuid as uuidlib
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from blob_client import PUT_BLOB_MAX_BYTES
from tests.components import FIXTURES
from tests.gateway.conftest import SDC, VADER, Stack

FIX = FIXTURES
JUNK = (FIX / "what_a_piece_of_junk.zfs.bz2").read_bytes()
JUNK_SHA1 = "1b4240b257a89a190fd1a3c9eccffc7ccc951352"
JUNK_MD5 = "J6sttoCHpi4ByXyf3LrjXw=="
ICON = (FIX / "icon.jpg").read_bytes()
ICON_MD5 = base64.b64encode(hashlib.md5(ICON).digest()).decode()
ICON_SHA1 = hashlib.sha1(ICON).hexdigest()


def new_image(c: httpx.Client, owner: str = SDC, **extra: Any) -> str:
    body = {
        "name": f"f-{uuidlib.uuid4().hex[:8]}",
        "version": "1.0.0",
        "os": "smartos",
        "type": "zone-dataset",
    }
    r = c.post("/images", json={**body, "owner": owner, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["uuid"])


def put_file(
    c: httpx.Client, uuid: str, data: bytes = JUNK, query: str = "compression=bzip2"
) -> httpx.Response:
    return c.put(f"/images/{uuid}/file?{query}", content=data)


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


def raw_request(stack: Stack, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send a hand-written request (headers the HTTP client would refuse to send)."""
    u = urlsplit(stack.base_url)
    with socket.create_connection((u.hostname or "127.0.0.1", u.port or 80), timeout=10) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head_b, _, rest = data.partition(b"\r\n\r\n")
        status = int(head_b.split(b" ")[1])
        length = 0
        for line in head_b.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, rest


# --- lifecycle -------------------------------------------------------------------------------------


def test_lifecycle_with_fixtures(dc: httpx.Client) -> None:
    uuid = new_image(dc)
    r = put_file(dc, uuid, query=f"compression=bzip2&sha1={JUNK_SHA1}")
    assert r.status_code == 200, r.text
    img = r.json()
    assert img["files"] == [{"sha1": JUNK_SHA1, "size": 22, "compression": "bzip2"}]
    compact = json.dumps(img, separators=(",", ":"), ensure_ascii=False).encode()
    assert r.headers["etag"] == hashlib.sha1(compact).hexdigest()
    # The image object is the one GetImage serves.
    g = dc.get(f"/images/{uuid}")
    assert g.json() == img and g.headers["etag"] == r.headers["etag"]

    r = dc.post(f"/images/{uuid}?action=activate", json={})
    assert r.status_code == 200 and r.json()["state"] == "active"

    r = dc.get(f"/images/{uuid}/file")
    assert r.status_code == 200
    assert r.content == JUNK
    assert r.headers["content-md5"] == JUNK_MD5
    assert r.headers["content-length"] == "22"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["etag"] == JUNK_SHA1
    assert r.headers["last-modified"].endswith("GMT")
    assert r.headers["server"].startswith("imgapi/")

    r = dc.put(f"/images/{uuid}/icon", content=ICON, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.json()["icon"] is True
    r = dc.get(f"/images/{uuid}/icon")
    assert r.status_code == 200 and r.content == ICON
    assert r.headers["content-md5"] == ICON_MD5
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["etag"] == ICON_SHA1
    r = dc.delete(f"/images/{uuid}/icon")
    assert r.status_code == 200 and "icon" not in r.json()
    error(dc.get(f"/images/{uuid}/icon"), 404, "ResourceNotFound")
    error(dc.delete(f"/images/{uuid}/icon"), 404, "ResourceNotFound")

    # Activated: files are immutable.
    body = error(put_file(dc, uuid), 422, "ImageFilesImmutable")
    assert uuid in body["message"]


def test_replacing_a_file_and_failed_upload_keeps_previous(dc: httpx.Client) -> None:
    uuid = new_image(dc)
    assert put_file(dc, uuid).status_code == 200
    other = b"other bytes\n"
    r = put_file(dc, uuid, other, "compression=none&dataset_guid=" + str(uuidlib.uuid4()))
    assert r.status_code == 200
    f = r.json()["files"][0]
    assert f["sha1"] == hashlib.sha1(other).hexdigest() and f["compression"] == "none" and "dataset_guid" in f
    error(put_file(dc, uuid, b"xyz", "compression=gzip&sha1=" + "0" * 40), 400, "Download")
    assert dc.get(f"/images/{uuid}/file").content == other


def test_large_streamed_roundtrip(dc: httpx.Client) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    uuid = new_image(dc)

    def gen() -> Any:
        for i in range(0, len(data), 70_000):
            yield data[i : i + 70_000]

    r = dc.put(f"/images/{uuid}/file?compression=none", content=gen())  # chunked, no Content-Length
    assert r.status_code == 200, r.text
    assert r.json()["files"][0]["sha1"] == hashlib.sha1(data).hexdigest()
    r = dc.get(f"/images/{uuid}/file")
    assert r.content == data
    assert r.headers["content-md5"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    r = dc.get(f"/images/{uuid}/file", headers={"Range": "bytes=3000000-4500000"})
    assert r.status_code == 206 and r.content == data[3000000:4500001]


@pytest.mark.parametrize("size", [PUT_BLOB_MAX_BYTES, PUT_BLOB_MAX_BYTES + 1], ids=["one-call", "streamed"])
def test_small_and_streamed_bodies_answer_alike(dc: httpx.Client, size: int) -> None:
    """A body up to PutBlob's limit is stored in one blob call, a larger one through an upload:
    the client sees the same answers either way."""
    data = os.urandom(size)
    sha1 = hashlib.sha1(data).hexdigest()
    uuid = new_image(dc)
    body = error(put_file(dc, uuid, data, "compression=none&sha1=" + "0" * 40), 400, "Download")
    assert body["message"] == f'"sha1" hash, {"0" * 40}, does not match the uploaded file sha1 hash, {sha1}'
    assert dc.get(f"/images/{uuid}").json()["files"] == []
    r = put_file(dc, uuid, data, f"compression=none&sha1={sha1}")
    assert r.status_code == 200, r.text
    assert r.json()["files"][0]["sha1"] == sha1 and r.json()["files"][0]["size"] == size
    got = dc.get(f"/images/{uuid}/file")
    assert got.content == data
    assert got.headers["content-md5"] == base64.b64encode(hashlib.md5(data).digest()).decode()


# --- AddImageFile errors ----------------------------------------------------------------------


def test_add_file_errors(dc: httpx.Client, dc_stack: Stack) -> None:
    uuid = new_image(dc)
    body = error(dc.put(f"/images/{uuid}/file", content=JUNK), 422, "InvalidParameter")
    assert body["errors"] == [{"field": "compression", "code": "Missing"}]
    body = error(put_file(dc, uuid, query="compression="), 422, "InvalidParameter")
    assert body["errors"][0]["code"] == "Missing"
    body = error(put_file(dc, uuid, query="compression=lzma"), 422, "InvalidParameter")
    assert body["errors"] == [{"field": "compression", "code": "Invalid"}]
    body = error(
        put_file(dc, uuid, query=f"compression=none&storage=local&account={SDC}"), 422, "InvalidParameter"
    )
    assert body["errors"][0]["field"] == "storage" and body["errors"][0]["code"] == "NotAllowed"
    body = error(put_file(dc, uuid, query="compression=none&storage=floppy"), 422, "InvalidParameter")
    assert body["errors"][0]["field"] == "storage" and body["errors"][0]["code"] == "Invalid"
    assert put_file(dc, uuid, query="compression=none&storage=manta").status_code == 200

    error(put_file(dc, uuid, b""), 400, "Download")
    body = error(put_file(dc, uuid, query="compression=none&sha1=" + JUNK_SHA1.upper()), 400, "Download")
    assert JUNK_SHA1 in body["message"]
    # Declared length above 20 GiB: refused before the body.
    status, raw = raw_request(
        dc_stack,
        f"PUT /images/{uuid}/file?compression=none HTTP/1.1\nHost: x\nContent-Length: 21474836481\n"
        "Connection: close\n",
    )
    assert status == 400 and b'"Upload"' in raw
    # Content-Length shorter than the body actually sent is caught by the HTTP layer; a mismatch
    # the server can observe (fewer bytes, then the client half-closes) is never attached.
    assert dc.get(f"/images/{uuid}/file").content == JUNK


def test_add_file_visibility_and_ownership(dc: httpx.Client) -> None:
    missing = str(uuidlib.uuid4())
    error(put_file(dc, missing), 404, "ResourceNotFound")
    error(dc.put("/images/NOT-A-UUID/file?compression=none", content=b"x"), 404, "ResourceNotFound")
    uuid = new_image(dc, owner=VADER)
    # Unactivated images are visible to their owner only.
    error(put_file(dc, uuid, query=f"compression=none&account={SDC}"), 404, "ResourceNotFound")
    error(put_file(dc, uuid, query="compression=none&account=nope"), 422, "InvalidParameter")
    assert put_file(dc, uuid, query=f"compression=none&account={VADER}").status_code == 200
    # Once public and active, a non-owner sees it but is not the owner.
    assert dc.post(f"/images/{uuid}?action=update", json={"public": True}).status_code == 200
    assert dc.post(f"/images/{uuid}?action=activate", json={}).status_code == 200
    error(put_file(dc, uuid, query=f"compression=none&account={SDC}"), 422, "NotImageOwner")


# --- GetImageFile ------------------------------------------------------------------------------


def test_get_file_errors_and_conditionals(dc: httpx.Client) -> None:
    uuid = new_image(dc)
    body = error(dc.get(f"/images/{uuid}/file"), 404, "ResourceNotFound")
    assert body["message"] == f'image "{uuid}" has no file'
    assert put_file(dc, uuid).status_code == 200
    body = error(dc.get(f"/images/{uuid}/file?index=1"), 404, "ResourceNotFound")
    assert body["message"] == f'image "{uuid}" has no file at index 1'
    assert dc.get(f"/images/{uuid}/file?index=abc").content == JUNK
    error(dc.get(f"/images/{uuidlib.uuid4()!s}/file"), 404, "ResourceNotFound")
    # An Authorization header is ignored on this route.
    assert dc.get(f"/images/{uuid}/file", headers={"Authorization": "garbage"}).status_code == 200

    etag = dc.get(f"/images/{uuid}").headers["etag"]
    r = dc.get(f"/images/{uuid}/file", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    error(dc.get(f"/images/{uuid}/file", headers={"If-Match": "nope"}), 412, "PreconditionFailed")
    assert dc.get(f"/images/{uuid}/file", headers={"If-Match": etag}).status_code == 200
    r = dc.get(f"/images/{uuid}/file", headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})
    assert r.status_code == 304
    r = dc.get(f"/images/{uuid}/file", headers={"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})
    body = error(r, 412, "PreconditionFailed")
    assert body["message"] == "if-unmodified-since 'Thu, 01 Jan 1970 00:00:00 GMT' failed"
    body = error(
        dc.get(f"/images/{uuid}/file", headers={"If-Match": '"nope" , W/"x"'}), 412, "PreconditionFailed"
    )
    assert body["message"] == f"if-match '\"nope\" , W/\"x\"' didn't match etag '{etag}'"
    # a weak or quoted tag, or one of a list, matches; so does * however written
    for if_match in (f'W/"{etag}"', f'"x", "{etag}"', '"*"', "W/*"):
        assert dc.get(f"/images/{uuid}/file", headers={"If-Match": if_match}).status_code == 200, if_match
    # not HTTP dates: no condition (a year too large for any calendar too)
    for date in ("yesterday", "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"):
        for name in ("If-Unmodified-Since", "If-Modified-Since"):
            assert dc.get(f"/images/{uuid}/file", headers={name: date}).status_code == 200, (name, date)
    # If-None-Match present: If-Modified-Since is not looked at
    r = dc.get(
        f"/images/{uuid}/file",
        headers={"If-None-Match": "other", "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    )
    assert r.status_code == 200


@pytest.fixture(scope="module")
def junk_image(dc_stack: Stack) -> str:
    with dc_stack.client() as c:
        uuid = new_image(c)
        assert put_file(c, uuid).status_code == 200
        return uuid


@pytest.mark.parametrize(
    ("header", "status", "content_range", "body"),
    [
        ("bytes=0-3", 206, "bytes 0-3/22", JUNK[0:4]),
        ("bytes=5-", 206, "bytes 5-21/22", JUNK[5:]),
        ("bytes=-6", 206, "bytes 16-21/22", JUNK[-6:]),
        ("bytes=-100", 206, "bytes 0-21/22", JUNK),
        ("bytes=10-1000", 206, "bytes 10-21/22", JUNK[10:]),
        ("bytes=21-21", 206, "bytes 21-21/22", JUNK[21:]),
        ("bytes=22-", 416, "bytes */22", None),
        ("bytes=100-200", 416, "bytes */22", None),
        ("bytes=-0", 416, "bytes */22", None),
        ("bytes=5-2", 200, None, JUNK),  # invalid: ignored
        ("bytes=abc", 200, None, JUNK),
        ("items=0-3", 200, None, JUNK),
        ("bytes=0-1,4-5", 200, None, JUNK),  # several ranges: full content
    ],
)
def test_range(
    dc: httpx.Client, junk_image: str, header: str, status: int, content_range: str | None, body: bytes | None
) -> None:
    r = dc.get(f"/images/{junk_image}/file", headers={"Range": header})
    assert r.status_code == status, r.text
    assert r.headers.get("content-range") == content_range
    if body is not None:
        assert r.content == body
        assert r.headers["content-length"] == str(len(body))
    if status == 206:
        assert r.headers["etag"] == JUNK_SHA1 and r.headers["accept-ranges"] == "bytes"
    if status == 200:
        assert r.headers["content-md5"] == JUNK_MD5
    if status == 416:
        assert r.json()["code"] == "RequestedRangeNotSatisfiable"


def test_if_range(dc: httpx.Client, junk_image: str) -> None:
    url = f"/images/{junk_image}/file"
    r = dc.get(url, headers={"Range": "bytes=0-3", "If-Range": JUNK_SHA1})
    assert r.status_code == 206
    r = dc.get(url, headers={"Range": "bytes=0-3", "If-Range": f'"{JUNK_SHA1}"'})
    assert r.status_code == 206
    r = dc.get(url, headers={"Range": "bytes=0-3", "If-Range": "0" * 40})
    assert r.status_code == 200 and r.content == JUNK
    lm = r.headers["last-modified"]
    assert dc.get(url, headers={"Range": "bytes=0-3", "If-Range": lm}).status_code == 206
    r = dc.get(url, headers={"Range": "bytes=0-3", "If-Range": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert r.status_code == 200


# --- icons --------------------------------------------------------------------------------


def test_icon_errors(dc: httpx.Client, dc_stack: Stack) -> None:
    uuid = new_image(dc)
    for ct in ("image/bmp", "image/jpeg; charset=binary", "IMAGE/JPEG", ""):
        headers = {"Content-Type": ct} if ct else {}
        body = error(dc.put(f"/images/{uuid}/icon", content=ICON, headers=headers), 400, "Upload")
        assert "content-type" in body["message"]
    jpeg = {"Content-Type": "image/jpeg"}
    body = error(
        dc.put(f"/images/{uuid}/icon?storage=local&account={SDC}", content=ICON, headers=jpeg),
        422,
        "InvalidParameter",
    )
    assert body["errors"][0]["field"] == "storage"
    error(dc.put(f"/images/{uuid}/icon?storage=bogus", content=ICON, headers=jpeg), 422, "InvalidParameter")
    error(dc.put(f"/images/{uuid}/icon", content=b"", headers=jpeg), 400, "Upload")
    error(dc.put(f"/images/{uuid}/icon?sha1={'0' * 40}", content=ICON, headers=jpeg), 400, "Upload")
    big = os.urandom(131073)
    error(dc.put(f"/images/{uuid}/icon", content=big, headers=jpeg), 400, "Upload")  # Content-Length

    def gen() -> Any:
        yield big[:100000]
        yield big[100000:]

    error(dc.put(f"/images/{uuid}/icon", content=gen(), headers=jpeg), 400, "Upload")  # streamed
    assert "icon" not in dc.get(f"/images/{uuid}").json()
    # Exactly at the limit is fine; icons may be changed in any state.
    r = dc.put(f"/images/{uuid}/icon?sha1={ICON_SHA1}", content=ICON, headers=jpeg)
    assert r.status_code == 200
    png = os.urandom(131072)
    r = dc.put(f"/images/{uuid}/icon", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200
    g = dc.get(f"/images/{uuid}/icon")
    assert g.content == png and g.headers["content-type"] == "image/png"
    error(dc.post(f"/images/{uuid}/icon", content=ICON, headers=jpeg), 405, "MethodNotAllowedError")
    error(dc.get(f"/images/{uuidlib.uuid4()!s}/icon"), 404, "ResourceNotFound")
    error(dc.delete(f"/images/{uuidlib.uuid4()!s}/icon"), 404, "ResourceNotFound")
    etag = dc.get(f"/images/{uuid}").headers["etag"]
    assert dc.get(f"/images/{uuid}/icon", headers={"If-None-Match": etag}).status_code == 304


def test_icon_ownership(dc: httpx.Client) -> None:
    uuid = new_image(dc, owner=VADER)
    jpeg = {"Content-Type": "image/jpeg"}
    error(dc.put(f"/images/{uuid}/icon?account={SDC}", content=ICON, headers=jpeg), 404, "ResourceNotFound")
    assert dc.put(f"/images/{uuid}/icon?account={VADER}", content=ICON, headers=jpeg).status_code == 200
    error(dc.delete(f"/images/{uuid}/icon?account={SDC}"), 404, "ResourceNotFound")
    assert dc.delete(f"/images/{uuid}/icon?account={VADER}").status_code == 200
