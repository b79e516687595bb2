"""Issue 10 item 5 (tus): a PATCH never reads, spools or stores more than Upload-Length - offset.

An upload declared as 10 bytes receives an endless chunked PATCH body (no Content-Length to refuse
up front), with and without ``Upload-Checksum``. The gateway must answer with a clear error after
reading about the 10 bytes; today the checksummed form spools everything it is sent to a temporary
file, and answers only when the body ends.
"""

from __future__ import annotations

import base64
import hashlib
import json
import select
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.gateway.conftest import Stack, start_stack
from tests.gateway.test_files import new_image

TUS = {"Tus-Resumable": "1.0.0"}
MIB = 1024 * 1024
#: What the client pushes at most; the kernel's socket buffers hold a few MiB of it anyway.
PUSH_LIMIT = 160 * MIB
#: The gateway must have answered before the client pushed this much.
ANSWERED_BY = 24 * MIB


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("tus-limits"))
    yield s
    s.stop()


@pytest.fixture()
def c(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client(**{"Accept-Version": "*"}) as client:
        yield client


def _read_response(s: socket.socket) -> tuple[int, dict[str, str]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "closed without a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return int(head.split(b" ")[1]), json.loads(body) if length else {}


def _endless_patch(stack: Stack, location: str, extra: str) -> tuple[int, int, dict[str, str]]:
    """PATCH ``location`` with an endless chunked body; (bytes pushed before the answer, status, body)."""
    u = urlsplit(stack.base_url)
    chunk = b"z" * MIB
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with socket.create_connection((u.hostname or "", u.port or 80), timeout=60) as s:
        s.sendall(
            (
                f"PATCH {location} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                f"Content-Type: application/offset+octet-stream\r\n{extra}"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        pushed = 0
        s.setblocking(False)
        view = memoryview(frame)
        while pushed < PUSH_LIMIT:
            readable, writable, _ = select.select([s], [s], [], 30)
            if readable:
                break  # the gateway answered
            assert writable, "neither answered nor reading"
            try:
                n = s.send(view)
            except (BrokenPipeError, ConnectionResetError):
                break
            pushed += n
            view = view[n:] or memoryview(frame)
        else:
            s.setblocking(True)
            s.sendall(b"0\r\n\r\n")  # end the body: an unbounded gateway answers only now
        s.setblocking(True)
        status, body = _read_response(s)
    return pushed, status, body


@pytest.mark.parametrize("checksum", [True, False], ids=["checksum", "plain"])
def test_patch_past_upload_length_is_cut(stack: Stack, c: httpx.Client, checksum: bool) -> None:
    uuid = new_image(c)
    r = c.post(f"/images/{uuid}/file/uploads?compression=none", headers={**TUS, "Upload-Length": "10"})
    assert r.status_code == 201
    location = r.headers["location"]
    digest = base64.b64encode(hashlib.sha1(b"z" * 10).digest()).decode()
    extra = f"Upload-Checksum: sha1 {digest}\r\n" if checksum else ""

    pushed, status, body = _endless_patch(stack, location, extra)

    assert pushed < ANSWERED_BY, f"the gateway read {pushed} bytes of a 10-byte upload before answering"
    assert (status, body.get("code")) == (400, "BadRequestError"), body
    assert "Upload-Length" in body["message"]
    head = c.head(location, headers=TUS)
    assert head.status_code == 200
    assert int(head.headers["upload-offset"]) <= 10  # nothing past Upload-Length was stored
    assert c.get(f"/images/{uuid}").json()["files"] == []
