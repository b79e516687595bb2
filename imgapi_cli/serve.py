"""``imgapi serve``: the embedded default -- catalog + blob + gateway on one machine, one command.

Each service runs as its own child process (``python -m catalog_service serve``, ``python -m
blob_service``, ``python -m gateway``) configured through its ``IMGAPI_*`` environment variables:
the catalog keeps a SQLite database under ``<data_dir>/catalog``, the blob service keeps files under
``<data_dir>/blobs``. Every other ``IMGAPI_*`` variable of the caller's environment passes through
unchanged (e.g. ``IMGAPI_CATALOG_MODE=public``), except the ones this command sets (listen
addresses, data directories, backend, service targets).

The supervisor holds an exclusive ``fcntl`` lock on ``<data_dir>/imgapi.lock`` for its whole
lifetime, so a second ``serve`` on the same directory fails at once with a clear message. It waits
for every service to report healthy (gRPC health check, ``GET /ping``), prints where they listen,
and on Ctrl-C / SIGTERM stops the gateway first (no new requests), then the blob and catalog
services, each gracefully (SIGTERM, then SIGKILL after a grace period). If a service dies, the rest
are stopped and the command exits non-zero. Children live in their own session so a terminal Ctrl-C
reaches only the supervisor, which then stops them in order; on Linux they also receive SIGTERM if
the supervisor itself is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgapi_common import deathsig

DEFAULT_DATA_DIR = Path("var")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_CATALOG_PORT = 8501
DEFAULT_BLOB_PORT = 8502
LOCK_NAME = "imgapi.lock"

#: Settings this command owns; the caller's values for them are ignored (a warning says so).
_OWNED = (
    "IMGAPI_CATALOG_BIND",
    "IMGAPI_CATALOG_DATA_DIR",
    "IMGAPI_CATALOG_DATABASE_URL",
    "IMGAPI_BLOB_BIND",
    "IMGAPI_BLOB_BACKEND",
    "IMGAPI_BLOB_DATA_DIR",
    "IMGAPI_GATEWAY_HOST",
    "IMGAPI_GATEWAY_PORT",
    "IMGAPI_GATEWAY_CATALOG_TARGET",
    "IMGAPI_GATEWAY_BLOB_TARGET",
)


class ServeError(Exception):
    """A start-up failure with a message for the operator."""


class DataDirLocked(ServeError):
    pass


# --- the data-directory lock --------------------------------------------------------------------


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[IO[str]]:
    """Hold an exclusive lock on ``<data_dir>/imgapi.lock`` (released when the process ends)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    f = path.open("a+")
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise DataDirLocked(
                f"data directory {data_dir} is already in use by another imgapi serve "
                f"(pid {holder}, lock {path}); stop it first or use another --data-dir"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield f
    finally:
        f.close()  # closing the descriptor releases the lock


# --- children -----------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    address: str
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            deathsig.wrap(self.argv),  # SIGTERM when the supervisor dies, even by SIGKILL
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Wait for the exit (SIGKILL after ``timeout``); returns the exit status."""
        if self.proc is None:
            return 0
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"imgapi: {self.name} did not stop within {timeout:g}s; killing it", file=sys.stderr)
            self.proc.kill()
            return self.proc.wait()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _grpc_healthy(target: str) -> bool:
    try:
        with grpc.insecure_channel(target) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def _http_healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


# --- the command --------------------------------------------------------------------------------


def serve_command(
    data_dir: Path = DEFAULT_DATA_DIR,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    grpc_host: str = "127.0.0.1",
    catalog_port: int = DEFAULT_CATALOG_PORT,
    blob_port: int = DEFAULT_BLOB_PORT,
    startup_timeout: float = 60.0,
    stop_timeout: float = 30.0,
    ready_file: Path | None = None,
) -> int:
    """Run catalog + blob + gateway until Ctrl-C / SIGTERM; returns the exit status.

    A port of 0 picks a free one. ``ready_file``, when given, receives the REST URL and the two gRPC
    addresses (one per line) once everything is healthy (for scripts and tests).
    """
    data_dir = data_dir.expanduser().resolve()
    try:
        with data_dir_lock(data_dir):
            return _serve_locked(
                data_dir,
                host,
                port,
                grpc_host,
                catalog_port,
                blob_port,
                startup_timeout,
                stop_timeout,
                ready_file,
            )
    except ServeError as e:
        print(f"imgapi: {e}", file=sys.stderr)
        return 1


def _serve_locked(
    data_dir: Path,
    host: str,
    port: int,
    grpc_host: str,
    catalog_port: int,
    blob_port: int,
    startup_timeout: float,
    stop_timeout: float,
    ready_file: Path | None,
) -> int:
    catalog_dir = data_dir / "catalog"
    blob_dir = data_dir / "blobs"
    catalog_dir.mkdir(exist_ok=True)
    blob_dir.mkdir(exist_ok=True)
    catalog_port = catalog_port or _free_port(grpc_host)
    blob_port = blob_port or _free_port(grpc_host)
    port = port or _free_port(host)
    catalog_addr = _hostport(grpc_host, catalog_port)
    blob_addr = _hostport(grpc_host, blob_port)
    catalog_target = _hostport(_connect_host(grpc_host), catalog_port)
    blob_target = _hostport(_connect_host(grpc_host), blob_port)
    rest_url = f"http://{_hostport(host, port)}"
    ping_url = f"http://{_hostport(_connect_host(host), port)}/ping"

    overridden = [k for k in _OWNED if k in os.environ]
    if overridden:
        names = ", ".join(overridden)
        print(f"imgapi: serve sets {names} itself; ignoring the environment's", file=sys.stderr)
    base = {k: v for k, v in os.environ.items() if k not in _OWNED}
    # One random token per stack: the services answer only calls that carry it (docs/security.md).
    from imgapi_common.internal_auth import TOKEN_SETTING

    base[TOKEN_SETTING] = base.get(TOKEN_SETTING) or secrets.token_urlsafe(32)
    base["PYTHONUNBUFFERED"] = "1"
    py = sys.executable
    children = [
        Child(
            "catalog",
            [py, "-m", "catalog_service", "serve"],
            base | {"IMGAPI_CATALOG_BIND": catalog_addr, "IMGAPI_CATALOG_DATA_DIR": str(catalog_dir)},
            catalog_addr,
        ),
        Child(
            "blob",
            [py, "-m", "blob_service"],
            base
            | {
                "IMGAPI_BLOB_BIND": blob_addr,
                "IMGAPI_BLOB_BACKEND": "local",
                "IMGAPI_BLOB_DATA_DIR": str(blob_dir),
            },
            blob_addr,
        ),
        Child(
            "gateway",
            [py, "-m", "gateway"],
            base
            | {
                "IMGAPI_GATEWAY_HOST": host,
                "IMGAPI_GATEWAY_PORT": str(port),
                "IMGAPI_GATEWAY_CATALOG_TARGET": catalog_target,
                "IMGAPI_GATEWAY_BLOB_TARGET": blob_target,
            },
            rest_url,
        ),
    ]
    catalog, blob, gateway = children
    checks: dict[str, Callable[[], bool]] = {
        "catalog": lambda: _grpc_healthy(catalog_target),
        "blob": lambda: _grpc_healthy(blob_target),
        "gateway": lambda: _http_healthy(ping_url),
    }

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        print(f"imgapi: starting in {data_dir}", flush=True)
        for child in (catalog, blob):
            child.start()
        _wait_healthy([catalog, blob], checks, startup_timeout, stop)
        gateway.start()
        _wait_healthy([gateway], checks, startup_timeout, stop)
        if stop.is_set():
            return 130
        lines = [rest_url, f"grpc://{catalog_addr}", f"grpc://{blob_addr}"]
        print(
            f"imgapi: ready\n"
            f"  REST (IMGAPI)      {rest_url}\n"
            f"  catalog gRPC       {catalog_addr}\n"
            f"  blob gRPC          {blob_addr}\n"
            f"  data directory     {data_dir}\n"
            f"Press Ctrl-C to stop.",
            flush=True,
        )
        if ready_file is not None:
            ready_file.write_text("\n".join(lines) + "\n")
        while not stop.wait(0.5):
            for child in children:
                code = child.exited()
                if code is not None:
                    msg = f"imgapi: {child.name} exited unexpectedly (status {code}); stopping"
                    print(msg, file=sys.stderr)
                    status = 1
                    stop.set()
                    break
        return status
    except ServeError as e:
        print(f"imgapi: {e}", file=sys.stderr)
        return 1
    finally:
        if received:
            print("imgapi: stopping", flush=True)
        # The gateway first (no new requests reach the services), then the services.
        gateway.terminate()
        gateway.wait(stop_timeout)
        for child in (blob, catalog):
            child.terminate()
        for child in (blob, catalog):
            child.wait(stop_timeout)
        if ready_file is not None:
            with contextlib.suppress(FileNotFoundError):
                ready_file.unlink()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            print("imgapi: stopped", flush=True)


def _wait_healthy(
    children: list[Child], checks: dict[str, Callable[[], bool]], timeout: float, stop: threading.Event
) -> None:
    deadline = time.monotonic() + timeout
    pending = list(children)
    while pending and not stop.is_set():
        for child in list(pending):
            code = child.exited()
            if code is not None:
                raise ServeError(f"{child.name} exited during start-up (status {code}); see its log above")
            if checks[child.name]():
                pending.remove(child)
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(c.name for c in pending)
            raise ServeError(f"{names} not healthy after {timeout:g}s")
        stop.wait(0.1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="imgapi serve",
        description="Run catalog + blob + gateway on this machine (SQLite + local files under DATA_DIR).",
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="default: ./var")
    p.add_argument("--host", default=DEFAULT_HOST, help="REST listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="REST port (default 8080; 0 = any)")
    p.add_argument("--grpc-host", default="127.0.0.1", help="gRPC listen address (default 127.0.0.1)")
    p.add_argument("--catalog-port", type=int, default=DEFAULT_CATALOG_PORT, help="default 8501; 0 = any")
    p.add_argument("--blob-port", type=int, default=DEFAULT_BLOB_PORT, help="default 8502; 0 = any")
    p.add_argument("--startup-timeout", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--ready-file", type=Path, help="write the listen addresses here once ready")
    a = p.parse_args(argv)
    return serve_command(
        a.data_dir,
        a.host,
        a.port,
        grpc_host=a.grpc_host,
        catalog_port=a.catalog_port,
        blob_port=a.blob_port,
        startup_timeout=a.startup_timeout,
        ready_file=a.ready_file,
    )


if __name__ == "__main__":
    sys.exit(main())
