"""A download holds a small fixed window in the gateway, however slowly its HTTP client reads.

The gateway runs as its own process (``python -m gateway``) so its RSS can be sampled; catalog and
blob run in this process. It gets the ``MALLOC_ARENA_MAX=2`` that ``imgapi serve`` gives it, and
glibc's default trim threshold: :func:`imgapi_common.memory.tune_malloc` otherwise keeps up to
40 MiB of freed transfer buffers mapped on purpose, which would hide what is actually held.

One client downloads the file at full speed, then eight read it slowly and stop reading. With
gRPC's bandwidth-probed receive windows (before ``blob_client.READ_WINDOW_OPTIONS``) the gateway
went on receiving ahead of them: 82-322 MiB of growth in eight of nine runs (under 64 MiB in the
ninth: the probe's estimate depends on timing). With the window bounded it grew 29-35 MiB, about
4 MiB a download (a message in gRPC, one in Python, one in the HTTP transport).
"""

from __future__ import annotations

import hashlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.components import free_port
from tests.deploy.procs import http_ok, procs_group, wait_until
from tests.gateway.conftest import Stack, start_stack
from tests.gateway.test_files import new_image

MIB = 1 << 20
SIZE = 200 * MIB
CLIENTS = 8
#: What each client reads before it stops reading, and how fast (MiB/s).
READ_BEFORE_STALL = 32 * MIB
RATE = 16 * MIB
STALL_SECONDS = 2.0
#: Growth of the gateway's RSS allowed per download.
BOUND_PER_DOWNLOAD = 6 * MIB


def content() -> Iterator[bytes]:
    block = bytes(range(256)) * 4096
    for i in range(SIZE // MIB):
        yield i.to_bytes(8, "big") + block[8:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("download-memory"), replication=False)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture()
def gateway(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    """A gateway process of its own in front of the stack's catalog and blob services."""
    port = free_port()
    env = {
        "IMGAPI_GATEWAY_HOST": "127.0.0.1",
        "IMGAPI_GATEWAY_PORT": str(port),
        "IMGAPI_GATEWAY_CATALOG_TARGET": stack.settings.catalog_target,
        "IMGAPI_GATEWAY_BLOB_TARGET": stack.settings.blob_target,
        "MALLOC_ARENA_MAX": "2",
        "MALLOC_TRIM_THRESHOLD_": "131072",
    }
    with procs_group(tmp_path) as procs:
        proc = procs.spawn("gateway", [sys.executable, "-m", "gateway"], env)
        url = f"http://127.0.0.1:{port}"
        wait_until("the gateway", lambda: http_ok(f"{url}/ping"), [proc])
        yield url, psutil.Process(proc.popen.pid)


def _get(port: int, uuid: str) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /images/{uuid}/file HTTP/1.1\r\nHost: imgapi\r\nAccept-Version: *\r\n\r\n".encode())
    return s


def _read_slowly(s: socket.socket, total: int) -> bytes:
    """Read ``total`` bytes of the response (head included) at :data:`RATE`."""
    got = bytearray()
    t0 = time.monotonic()
    while len(got) < total:
        data = s.recv(min(256 * 1024, total - len(got)))
        assert data, "the gateway closed the download"
        got += data
        ahead = len(got) / RATE - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    return bytes(got)


def test_slow_clients_do_not_make_the_gateway_buffer(
    stack: Stack, gateway: tuple[str, psutil.Process]
) -> None:
    url, proc = gateway
    port = int(url.rsplit(":", 1)[1])
    with stack.client(**{"Accept-Version": "*"}) as c:
        uuid = new_image(c)
        r = c.put(f"/images/{uuid}/file?compression=none", content=content(), timeout=120)
        assert r.status_code == 200, r.text
    expected = hashlib.sha1(b"".join(content())).hexdigest()
    # A first client downloads the whole file at full speed: the gateway's channels and pools exist
    # from then on, and gRPC's bandwidth probe, where it runs, has seen what the connection can do.
    got = hashlib.sha1()
    with httpx.stream("GET", f"{url}/images/{uuid}/file", headers={"Accept-Version": "*"}, timeout=60) as r:
        assert r.status_code == 200
        for piece in r.iter_bytes():
            got.update(piece)
    assert got.hexdigest() == expected
    base = proc.memory_info().rss

    peak = [base]
    stalled = threading.Barrier(CLIENTS + 1)
    heads = [b""] * CLIENTS
    socks = [_get(port, uuid) for _ in range(CLIENTS)]

    def client(i: int) -> None:
        heads[i] = _read_slowly(socks[i], READ_BEFORE_STALL)
        stalled.wait()  # everyone has stopped reading
        stalled.wait()  # the sampling is over

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        while stalled.n_waiting < CLIENTS:
            assert all(t.is_alive() for t in threads), "a client failed"
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)
        stalled.wait()
        end = time.monotonic() + STALL_SECONDS
        while time.monotonic() < end:
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)
        stalled.wait()
        for t in threads:
            t.join(10)
        # A stalled download resumes and ends with the right bytes.
        head, _, body = heads[0].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        rest = _read_rest(socks[0], SIZE - len(body))
        assert hashlib.sha1(body + rest).hexdigest() == expected
    finally:
        for s in socks:
            s.close()
    growth = peak[0] - base
    print(f"gateway RSS {base / MIB:.0f} MiB, peak {peak[0] / MIB:.0f} MiB, growth {growth / MIB:.0f} MiB")
    assert growth < CLIENTS * BOUND_PER_DOWNLOAD, f"gateway RSS grew {growth / MIB:.0f} MiB"


def _read_rest(s: socket.socket, n: int) -> bytes:
    """The next ``n`` bytes, read at full speed."""
    out = bytearray()
    while len(out) < n:
        data = s.recv(min(4 * MIB, n - len(out)))
        assert data, "the gateway closed the download"
        out += data
    return bytes(out)
