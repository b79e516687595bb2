"""Issue 10 items 7 and 8 at the connection level, with raw sockets against a real gateway.

Item 7: without a front proxy, a huge request head, thousands of headers, or a client that sends its
head slowly (or nothing at all) were accepted and held forever. Item 8: requests the HTTP parser
refuses got uvicorn's ``text/plain`` 400 instead of an IMGAPI JSON error.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import Stack, start_stack

HEAD_BYTES = 8192
HEAD_COUNT = 40
HEAD_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(
        tmp_path_factory.mktemp("edge-http"),
        mode="dc",
        max_header_bytes=HEAD_BYTES,
        max_header_count=HEAD_COUNT,
        header_timeout_seconds=HEAD_TIMEOUT,
    )
    yield s
    s.stop()


def connect(stack: Stack) -> socket.socket:
    host, port = stack.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (the connection is closed after it); fails on a timeout."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return status, headers, body


def assert_json_400(status: int, headers: dict[str, str], body: bytes, words: str) -> None:
    assert status == 400, body
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    doc = json.loads(body)
    assert doc["code"] == "BadRequestError", doc
    assert words in doc["message"], doc
    assert body == json.dumps(doc, indent=2).encode()
    assert headers["x-request-id"]


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection (EOF) within ``seconds``; data before it is read."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_request_head_larger_than_the_limit_is_refused_while_arriving(stack: Stack) -> None:
    with connect(stack) as sock:
        # The head never ends: without a limit the server keeps reading (a 300 MB header was buffered).
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (HEAD_BYTES * 3))
        assert_json_400(*read_response(sock), "too large")


def test_too_many_header_lines_are_refused(stack: Stack) -> None:
    with connect(stack) as sock:
        lines = b"".join(b"X-H%d: 1\r\n" % i for i in range(HEAD_COUNT * 3))
        assert len(lines) < HEAD_BYTES
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
        assert_json_400(*read_response(sock), "too many")


def test_head_within_the_limits_is_served(stack: Stack) -> None:
    with connect(stack) as sock:
        lines = b"".join(b"X-H%d: 1\r\n" % i for i in range(HEAD_COUNT - 5))
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
        status, _, body = read_response(sock)
        assert status == 200 and json.loads(body)["ping"] == "pong"


def test_idle_connection_is_closed(stack: Stack) -> None:
    with connect(stack) as sock:
        assert closed_within(sock, HEAD_TIMEOUT + 5)


def test_slow_head_sender_is_cut(stack: Stack) -> None:
    """A byte every 0.2 s: never idle, but the head takes longer than its deadline."""
    with connect(stack) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\n")
        deadline = time.monotonic() + HEAD_TIMEOUT + 5
        cut = False
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            sock.settimeout(0.2)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            cut = True  # the refusal (or EOF) arrived
            if data:
                assert b"400 Bad Request" in data and b"BadRequestError" in data
            break
        assert cut, "a slow head sender was never disconnected"


def test_keep_alive_connection_serves_several_requests(stack: Stack) -> None:
    with connect(stack) as sock:
        for _ in range(3):
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, _ = read_response(sock)
            assert status == 200 and headers["connection"] == "keep-alive"


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: -1\r\n",
        b"Content-Length: 1e3\r\n",
        b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 3\r\nContent-Length: 4\r\n",
        b"Transfer-Encoding: gzip, chunked, identity\r\n",
    ],
)
def test_malformed_framing_is_an_imgapi_json_400(stack: Stack, framing: bytes) -> None:
    with connect(stack) as sock:
        sock.sendall(
            b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing + b"\r\n{}"
        )
        assert_json_400(*read_response(sock), "malformed")
