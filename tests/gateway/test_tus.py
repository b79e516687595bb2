"""tus 1.0 resumable uploads of image files (core, creation, expiration, checksum, termination), with
the stock ``tuspy`` client, against the real gateway + catalog + blob services."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

import gateway.routes.tus
from tests.gateway.conftest import SDC, VADER, Stack
from tests.gateway.test_files import JUNK, JUNK_MD5, JUNK_SHA1, error, new_image, put_file

TUS = {"Tus-Resumable": "1.0.0"}
DATA = os.urandom(3 * 1024 * 1024 + 4321)
DATA_SHA1 = hashlib.sha1(DATA).hexdigest()


def uploads_url(stack: Stack, uuid: str, query: str = "") -> str:
    return f"{stack.base_url}/images/{uuid}/file/uploads" + (f"?{query}" if query else "")


def create(c: httpx.Client, uuid: str, length: int, query: str = "compression=none", **headers: str) -> str:
    r = c.post(
        f"/images/{uuid}/file/uploads?{query}", headers={**TUS, "Upload-Length": str(length), **headers}
    )
    assert r.status_code == 201, r.text
    assert r.headers["tus-resumable"] == "1.0.0"
    return r.headers["location"]


def patch(c: httpx.Client, loc: str, offset: int, data: bytes, **headers: str) -> httpx.Response:
    h = {**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **headers}
    return c.patch(loc, content=data, headers=h)


@pytest.fixture()
def tus_c(dc_stack: Stack) -> Iterator[httpx.Client]:
    with dc_stack.client(**{"Accept-Version": "*"}) as c:
        yield c


def test_options(tus_c: httpx.Client) -> None:
    uuid = new_image(tus_c)
    r = tus_c.options(f"/images/{uuid}/file/uploads")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {"creation", "expiration", "checksum", "termination"}
    assert int(r.headers["tus-max-size"]) == 20 * 1024**3
    assert "sha1" in r.headers["tus-checksum-algorithm"].split(",")


def test_tuspy_upload_equals_plain_put(dc_stack: Stack, tus_c: httpx.Client) -> None:
    uuid = new_image(tus_c)
    c = tus_client.TusClient(uploads_url(dc_stack, uuid))
    up = c.uploader(
        file_stream=io.BytesIO(DATA),
        chunk_size=1024 * 1024,
        metadata={"compression": "gzip", "sha1": DATA_SHA1, "filename": "x.zfs.gz"},
        upload_checksum=True,
    )
    up.upload()
    img = tus_c.get(f"/images/{uuid}").json()
    other = new_image(tus_c)
    plain = put_file(tus_c, other, DATA, "compression=gzip").json()
    assert img["files"] == plain["files"] == [{"sha1": DATA_SHA1, "size": len(DATA), "compression": "gzip"}]
    r = tus_c.get(f"/images/{uuid}/file")
    assert r.content == DATA
    assert r.headers["content-md5"] == base64.b64encode(hashlib.md5(DATA).digest()).decode()


def test_interrupted_and_resumed(dc_stack: Stack, tus_c: httpx.Client) -> None:
    """A PATCH whose connection drops keeps what arrived; a new tuspy uploader resumes at HEAD."""
    uuid = new_image(tus_c)
    loc = create(tus_c, uuid, len(DATA), "compression=bzip2")
    assert patch(tus_c, loc, 0, DATA[: 1024 * 1024]).status_code == 204
    # Drop the connection in the middle of the second PATCH.
    u = urlsplit(dc_stack.base_url)
    sent = 1_500_000
    with socket.create_connection((u.hostname, u.port)) as s:
        head = (
            f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {1024 * 1024}\r\n"
            "Content-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(DATA) - 1024 * 1024}\r\n\r\n"
        )
        s.sendall(head.encode() + DATA[1024 * 1024 : 1024 * 1024 + sent])
        time.sleep(0.5)
    offset = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the gateway notices the disconnect asynchronously
        r = tus_c.head(loc, headers=TUS)
        assert r.status_code == 200
        assert r.headers["upload-length"] == str(len(DATA)) and r.headers["cache-control"] == "no-store"
        offset = int(r.headers["upload-offset"])
        if offset > 1024 * 1024:
            break
        time.sleep(0.1)
    assert 1024 * 1024 <= offset <= 1024 * 1024 + sent
    # A stale offset is a conflict.
    r = patch(tus_c, loc, 0, DATA[:10])
    assert r.status_code == 409 and r.headers["upload-offset"] == str(offset)
    # Resume with a fresh tuspy uploader on the same URL (it asks HEAD for the offset).
    tc = tus_client.TusClient(uploads_url(dc_stack, uuid))
    up = tc.uploader(file_stream=io.BytesIO(DATA), url=dc_stack.base_url + loc, chunk_size=1024 * 1024)
    assert up.offset == offset
    up.upload()
    img = tus_c.get(f"/images/{uuid}").json()
    assert img["files"] == [{"sha1": DATA_SHA1, "size": len(DATA), "compression": "bzip2"}]
    assert tus_c.get(f"/images/{uuid}/file").content == DATA
    # The finished upload is gone.
    assert tus_c.head(loc, headers=TUS).status_code == 404


def test_checksum(tus_c: httpx.Client) -> None:
    uuid = new_image(tus_c)
    loc = create(tus_c, uuid, len(JUNK), f"compression=bzip2&sha1={JUNK_SHA1}")
    bad = base64.b64encode(hashlib.sha1(b"nope").digest()).decode()
    r = patch(tus_c, loc, 0, JUNK, **{"Upload-Checksum": f"sha1 {bad}"})
    assert r.status_code == 460 and r.headers["tus-resumable"] == "1.0.0"
    assert tus_c.head(loc, headers=TUS).headers["upload-offset"] == "0"
    r = patch(tus_c, loc, 0, JUNK[:5], **{"Upload-Checksum": "whirlpool AAAA"})
    assert r.status_code == 400
    good = base64.b64encode(hashlib.md5(JUNK).digest()).decode()
    r = patch(tus_c, loc, 0, JUNK, **{"Upload-Checksum": f"md5 {good}"})
    assert r.status_code == 204 and r.headers["upload-offset"] == str(len(JUNK))
    f = tus_c.get(f"/images/{uuid}/file")
    assert f.content == JUNK and f.headers["content-md5"] == JUNK_MD5


def test_termination(tus_c: httpx.Client) -> None:
    uuid = new_image(tus_c)
    loc = create(tus_c, uuid, 100)
    assert patch(tus_c, loc, 0, b"x" * 40).status_code == 204
    r = tus_c.delete(loc, headers=TUS)
    assert r.status_code == 204
    assert tus_c.head(loc, headers=TUS).status_code == 404
    assert patch(tus_c, loc, 40, b"y" * 60).status_code == 404
    assert tus_c.delete(loc, headers=TUS).status_code == 404
    assert tus_c.get(f"/images/{uuid}").json()["files"] == []


def test_expiration(tus_c: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    uuid = new_image(tus_c)
    loc = create(tus_c, uuid, 100)
    r = tus_c.head(loc, headers=TUS)
    expires = r.headers["upload-expires"]
    assert expires.endswith("GMT")
    monkeypatch.setattr(gateway.routes.tus, "TTL_SECONDS", 1)
    short = create(tus_c, uuid, 100)
    first = tus_c.head(short, headers=TUS)
    assert first.status_code == 200 and "upload-expires" in first.headers
    # Wait for the state (the short upload gone), not for a guessed time.
    deadline = time.monotonic() + 15
    while (status := tus_c.head(short, headers=TUS).status_code) == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == 404
    assert tus_c.head(loc, headers=TUS).status_code == 200  # the 24-hour upload did not expire


def test_protocol_errors(tus_c: httpx.Client) -> None:
    uuid = new_image(tus_c)
    r = tus_c.post(f"/images/{uuid}/file/uploads?compression=none", headers={"Upload-Length": "10"})
    assert r.status_code == 412 and r.headers["tus-version"] == "1.0.0"
    r = tus_c.post(f"/images/{uuid}/file/uploads?compression=none", headers=TUS)
    error(r, 400, "BadRequestError")
    loc = create(tus_c, uuid, 10)
    r = tus_c.patch(loc, content=b"x", headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = tus_c.head(f"/images/{uuid}/file/uploads/garbage", headers=TUS)
    assert r.status_code == 404
    other = new_image(tus_c)
    assert tus_c.head(loc.replace(uuid, other), headers=TUS).status_code == 404
    error(patch(tus_c, loc, 0, b"x" * 11), 400, "BadRequestError")  # beyond Upload-Length


def test_creation_runs_add_image_file_checks(tus_c: httpx.Client) -> None:
    uuid = new_image(tus_c, owner=VADER)
    r = tus_c.post(f"/images/{uuid}/file/uploads", headers={**TUS, "Upload-Length": "10"})
    assert error(r, 422, "InvalidParameter")["errors"][0] == {"field": "compression", "code": "Missing"}
    meta = "compression " + base64.b64encode(b"lzma").decode()
    r = tus_c.post(
        f"/images/{uuid}/file/uploads", headers={**TUS, "Upload-Length": "10", "Upload-Metadata": meta}
    )
    assert error(r, 422, "InvalidParameter")["errors"][0]["code"] == "Invalid"
    r = tus_c.post(
        f"/images/{uuid}/file/uploads?compression=none&account={SDC}", headers={**TUS, "Upload-Length": "10"}
    )
    error(r, 404, "ResourceNotFound")
    r = tus_c.post(f"/images/{uuid}/file/uploads?compression=none", headers={**TUS, "Upload-Length": "0"})
    error(r, 400, "Download")
    r = tus_c.post(
        f"/images/{uuid}/file/uploads?compression=none",
        headers={**TUS, "Upload-Length": str(20 * 1024**3 + 1)},
    )
    error(r, 400, "Upload")
    # Account kept in the Location: the owner finishes the upload.
    loc = create(tus_c, uuid, len(JUNK), f"compression=none&account={VADER}&sha1={'0' * 40}")
    assert f"account={VADER}" in loc
    error(patch(tus_c, loc, 0, JUNK), 400, "Download")  # sha1 mismatch at the end
    assert tus_c.get(f"/images/{uuid}").json()["files"] == []
    # Activated meanwhile: ImageAlreadyActivated at the end.
    loc = create(tus_c, uuid, len(JUNK), "compression=none")
    assert patch(tus_c, loc, 0, JUNK[:5]).status_code == 204
    assert put_file(tus_c, uuid).status_code == 200
    assert tus_c.post(f"/images/{uuid}?action=activate", json={}).status_code == 200
    error(patch(tus_c, loc, 5, JUNK[5:]), 422, "ImageAlreadyActivated")
    r = tus_c.post(f"/images/{uuid}/file/uploads?compression=none", headers={**TUS, "Upload-Length": "10"})
    error(r, 422, "ImageFilesImmutable")


def test_tuspy_reports_errors(dc_stack: Stack, tus_c: httpx.Client) -> None:
    uuid = new_image(tus_c)
    c = tus_client.TusClient(uploads_url(dc_stack, uuid))  # no compression
    up = c.uploader(file_stream=io.BytesIO(JUNK), chunk_size=1024)
    with pytest.raises(TusCommunicationError):
        up.upload()
