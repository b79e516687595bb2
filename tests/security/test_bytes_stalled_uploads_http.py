"""Issue 10 item 6 through the HTTP gateway: stalled uploads never stop downloads, and are cut.

A client that declares a 10 MB image file, sends 10 bytes and stalls holds a gateway request and
(through it) a blob-service upload stream. Downloads of other images must still answer while such
uploads stall, and the stalled ones are cut with an IMGAPI 408 after the upload idle time.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.security.bytes_stack import BytesStack, bytes_stack

SDC = "ba28f844-8cb4-f141-882d-46d6251e6a9f"


def _image_with_file(c: httpx.Client, data: bytes) -> str:
    r = c.post(
        "/images",
        json={"name": "stall", "version": "1.0.0", "os": "smartos", "type": "zone-dataset", "owner": SDC},
    )
    assert r.status_code == 200, r.text
    uuid = str(r.json()["uuid"])
    r = c.put(f"/images/{uuid}/file?compression=none", content=data)
    assert r.status_code == 200, r.text
    return uuid


def _new_image(c: httpx.Client) -> str:
    r = c.post(
        "/images",
        json={"name": "stall", "version": "1.0.0", "os": "smartos", "type": "zone-dataset", "owner": SDC},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["uuid"])


def _stall(stack: BytesStack, uuid: str) -> socket.socket:
    """PUT a file declared as 10 MB, send 10 bytes of it, and stop sending."""
    u = urlsplit(stack.base_url)
    s = socket.create_connection((u.hostname or "", u.port or 80), timeout=30)
    s.sendall(
        (
            f"PUT /images/{uuid}/file?compression=none HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
        ).encode()
        + b"0123456789"
    )
    return s


def _response(s: socket.socket) -> tuple[int, dict[str, object]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "connection closed without a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(v)
        for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])
        if k.strip().lower() == b"content-length"
    )
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return int(head.split(b" ")[1]), json.loads(body)


def _wait_for(what: str, cond: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_stalled_uploads_do_not_stop_downloads(tmp_path: Path) -> None:
    """More stalled uploads than the blob service has handler threads: downloads still answer."""
    blob = {"max_workers": 4, "max_upload_streams": 2, "upload_idle_seconds": 120}
    with (
        bytes_stack(tmp_path, blob, upload_idle_seconds=120) as stack,
        httpx.Client(base_url=stack.base_url, timeout=20) as c,
    ):
        other = _image_with_file(c, b"the other image's file")
        socks: list[socket.socket] = []
        try:
            for _ in range(2):
                socks.append(_stall(stack, _new_image(c)))
            _wait_for("2 stalled upload streams in the blob service", lambda: stack.blob.streams.active == 2)
            # As many more as the blob service has threads: each is refused at once (503), none hangs.
            for _ in range(4):
                s = _stall(stack, _new_image(c))
                socks.append(s)
                status, body = _response(s)
                assert (status, body["code"]) == (503, "ServiceUnavailableError"), body
            r = c.get(f"/images/{other}/file")
            assert r.status_code == 200 and r.content == b"the other image's file"
            assert c.get(f"/images/{other}").status_code == 200
            assert stack.blob.streams.active == 2  # the first two still stall, still held
        finally:
            for s in socks:
                s.close()


def test_stalled_uploads_are_cut_after_the_idle_time(tmp_path: Path) -> None:
    blob = {"max_workers": 4, "max_upload_streams": 2, "upload_idle_seconds": 120}
    with (
        bytes_stack(tmp_path, blob, upload_idle_seconds=0.5) as stack,
        httpx.Client(base_url=stack.base_url, timeout=20) as c,
    ):
        uuids = [_new_image(c) for _ in range(2)]
        socks = [_stall(stack, u) for u in uuids]
        try:
            for s in socks:
                status, body = _response(s)  # the gateway answers although the body never ends
                assert (status, body["code"]) == (408, "RequestTimeoutError"), body
        finally:
            for s in socks:
                s.close()
        _wait_for("the upload streams to be released", lambda: stack.blob.streams.active == 0)
        for u in uuids:
            assert c.get(f"/images/{u}").json()["files"] == []  # nothing attached
        # capacity is back: a whole upload goes through
        assert _image_with_file(c, b"after the cut")
