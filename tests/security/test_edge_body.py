"""Issue 10 items 5 and 8 for JSON request bodies, against a real gateway.

A JSON body was read whole before its size was checked: ``Content-Length: 1000000000`` grew the
gateway by the declared size, a chunked 200 MB body by twice that. A 100,000-deep JSON document
answered 500 (RecursionError). A 5xx left no trace in the log.
"""

from __future__ import annotations

import logging
import socket
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.conftest import Stack, start_stack
from tests.gateway.helpers import err
from tests.security.test_edge_http import assert_json_400, read_response

LIMIT = 4 * 1024 * 1024
#: What the server holds besides the body itself while reading it: asyncio's 256 KiB read buffer,
#: uvicorn's 64 KiB high-water body buffer and its copies, the piece in flight (measured: ~0.5 MiB).
SERVER_BUFFERS = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("edge-body"), mode="dc", max_json_body=LIMIT)
    yield s
    s.stop()


def connect(stack: Stack) -> socket.socket:
    host, port = stack.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def test_declared_length_over_the_limit_is_refused_before_the_body(stack: Stack) -> None:
    """The answer comes while the client has sent 2 bytes of a declared gigabyte."""
    with connect(stack) as sock:
        sock.sendall(
            b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n{}"
        )
        status, headers, body = read_response(sock)
    assert status == 400 and headers["connection"] == "close"
    assert b'"InvalidContent"' in body and b"too large" in body


def test_chunked_body_is_cut_past_the_limit_and_memory_stays_bounded(stack: Stack) -> None:
    """64 MiB sent chunked at a 4 MiB limit: the gateway stops reading after the limit, and the
    traced memory of this process (the gateway runs in it) grows by no more than the limit plus
    the server's fixed read buffers (today: by the whole body)."""
    piece = b"[" + b"0," * (32 * 1024) + b"0]"
    frame = b"%x\r\n%s\r\n" % (len(piece), piece)
    total = 64 * 1024 * 1024
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        sent = 0
        with connect(stack) as sock:
            sock.sendall(
                b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            try:
                while sent < total:
                    sock.sendall(frame)
                    sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the gateway closed the connection: what the test expects
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert sent < total, "the gateway read the whole 64 MiB body"
    assert peak <= LIMIT + SERVER_BUFFERS, f"memory grew by {peak} bytes for a {LIMIT}-byte limit"


def test_body_within_the_limit_is_read(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url) as c:
        r = c.post("/images", json={"name": "x" * (LIMIT // 2)})
    err(r, 422, "ValidationFailed")


def test_chunked_body_within_the_limit_is_read(stack: Stack) -> None:
    with connect(stack) as sock:
        piece = b'{"name": "chunked"}'
        sock.sendall(
            b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(piece), piece)
        )
        status, headers, body = read_response(sock)
    assert status == 422 and b"ValidationFailed" in body and headers["connection"] == "keep-alive"


@pytest.mark.parametrize("depth", [3000, 100_000])
def test_deeply_nested_json_is_400_invalid_content(stack: Stack, depth: int) -> None:
    with httpx.Client(base_url=stack.base_url) as c:
        for doc in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
            r = c.post("/images", content=doc, headers={"Content-Type": "application/json"})
            body = err(r, 400, "InvalidContent")
            assert body["message"].startswith("Invalid JSON")


def test_every_5xx_is_logged_with_the_request_id(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway")
    with httpx.Client(base_url=stack.base_url) as c:
        r = c.get("/ping?error=InternalError", headers={"x-request-id": "edge-5xx-request"})
        err(r, 500, "InternalError")
        r = c.get("/ping?error=StorageIsDown", headers={"x-request-id": "edge-503-request"})
        err(r, 503, "StorageIsDown")
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "edge-5xx-request" in text and "500" in text
    assert "edge-503-request" in text and "503" in text


def test_framing_refusal_is_json_too(stack: Stack) -> None:
    with connect(stack) as sock:
        sock.sendall(b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        assert_json_400(*read_response(sock), "malformed")


def test_json_body_limit_cannot_exceed_what_the_catalog_receives() -> None:
    """A body the gateway accepted but the catalog could not receive would be a 500."""
    from pydantic import ValidationError

    from gateway.settings import GatewaySettings
    from imgapi_common.limits import MAX_JSON_BODY_BYTES

    assert GatewaySettings(max_json_body=MAX_JSON_BODY_BYTES).max_json_body == MAX_JSON_BODY_BYTES
    with pytest.raises(ValidationError, match="max_json_body"):
        GatewaySettings(max_json_body=MAX_JSON_BODY_BYTES + 1)
