"""A connection cut for good in the middle of ``imgapi upload`` (a TCP relay in front of the gateway
that drops everything after some bytes and then refuses connections): after its retries the real
command exits 3 with one short line saying to run it again, and running it again (through a working
path) resumes from the server's offset."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from tests.cli.conftest import Cli

IMGAPI = str(Path(sys.executable).with_name("imgapi"))
MiB = 1024 * 1024


class CuttingRelay:
    """Relays 127.0.0.1:<port> to ``upstream``; after ``budget`` request bytes it cuts every
    connection and stops listening (later connects are refused)."""

    def __init__(self, upstream: tuple[str, int], budget: int, port: int = 0) -> None:
        self.upstream, self.budget = upstream, budget
        self.sent = 0
        self.cut = threading.Event()
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if counted:
                    with self.lock:
                        self.sent += len(data)
                        over = self.sent > self.budget
                    if over:
                        self.close()
                        return
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.cut.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()


def test_upload_cut_for_good_exits_3_then_resumes(cli: Cli, tmp_path: Path) -> None:
    u = cli.create()["uuid"]
    src = tmp_path / "disk.zfs.gz"
    src.write_bytes(os.urandom(5 * MiB))
    parts = urlsplit(cli.stack.base_url)
    upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
    relay = CuttingRelay(upstream, budget=2 * MiB + 123)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")},
        "IMGAPI_CACHE_DIR": str(cli.cache),
        "IMGAPI_URL": f"http://127.0.0.1:{relay.port}",
    }
    args = [IMGAPI, "upload", u, str(src), "--chunk-size", str(MiB), "--no-progress"]
    try:
        cut = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    finally:
        relay.close()
    assert relay.sent > relay.budget  # the relay did cut the upload
    assert cut.returncode == 3, cut.stderr
    lines = cut.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 250, cut.stderr
    assert "upload interrupted" in lines[0] and "run the same command again to resume" in lines[0]
    assert "Traceback" not in cut.stderr

    # The same command, the same URL, the path working again.
    healed = CuttingRelay(upstream, budget=1 << 40, port=relay.port)
    try:
        again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    finally:
        healed.close()
    assert again.returncode == 0, again.stderr
    assert "resuming upload at byte" in again.stderr and "resumed at byte" in again.stderr
    assert cli.json("get", u)["files"][0]["size"] == 5 * MiB
