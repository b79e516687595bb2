"""``imgapi serve``: the embedded default -- catalog + blob + replication + gateway on one machine.

Each service runs as its own child process (``python -m catalog_service serve``, ``python -m
blob_service``, ``python -m replication serve``, ``python -m gateway``) configured through its
``IMGAPI_*`` environment variables: the catalog keeps a SQLite database under ``<data_dir>/catalog``,
the blob service keeps files under ``<data_dir>/blobs``, the replication service its job state under
``<data_dir>/replication`` (the gateway's ``/replication/jobs`` routes manage its jobs). Every other ``IMGAPI_*`` variable of the caller's environment passes through
unchanged (e.g. ``IMGAPI_CATALOG_MODE=public``), except the ones this command sets (listen
addresses, data directories, backend, service targets).

The supervisor holds an exclusive ``fcntl`` lock on ``<data_dir>/imgapi.lock`` for its whole
lifetime, so a second ``serve`` on the same directory fails at once with a clear message. Every
port must be free before anything starts, and once a service answers its health check the socket
listening on its port must belong to that service (imgapi_cli/ports.py): a health check answered by
another stack on the same port fails with ``port N is in use``, never "ready". It waits
for every service to report healthy (gRPC health check, ``GET /ping``), prints where they listen,
and on Ctrl-C / SIGTERM stops the gateway first (no new requests), then the replication, blob and
catalog services, each gracefully (SIGTERM, then SIGKILL after a grace period). If a service dies, the rest
are stopped and the command exits non-zero. Children live in their own session so a terminal Ctrl-C
reaches only the supervisor, which then stops them in order; on Linux they also receive SIGTERM if
the supervisor itself is killed.

Its own lines follow the log rule of every process (imgapi_common/observability.py): human text when
its output is a terminal, one JSON object per line otherwise (``"service": "serve"``); the services
inherit the same streams and so make the same choice.
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

from imgapi_cli.ports import foreign_listener, port_in_use
from imgapi_common import deathsig
from imgapi_common.observability import is_terminal, json_line

DEFAULT_DATA_DIR = Path("var")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_CATALOG_PORT = 8501
DEFAULT_BLOB_PORT = 8502
DEFAULT_REPLICATION_PORT = 8503
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
    "IMGAPI_GATEWAY_REPLICATION_TARGET",
    "IMGAPI_REPLICATION_BIND",
    "IMGAPI_REPLICATION_DATA_DIR",
    "IMGAPI_REPLICATION_DATABASE_URL",
    "IMGAPI_REPLICATION_CATALOG_TARGET",
    "IMGAPI_REPLICATION_BLOB_TARGET",
)


def say(msg: str, level: str = "info", human: str = "", **fields: object) -> None:
    """One supervisor line: ``imgapi: msg`` (or ``human``) on a terminal, else a JSON log line.

    Information goes to stdout, warnings and errors to stderr.
    """
    stream = sys.stdout if level == "info" else sys.stderr
    if is_terminal(stream):
        print(human or f"imgapi: {msg}", file=stream, flush=True)
    else:
        print(json_line("serve", level, msg, fields), file=stream, flush=True)


class ServeError(Exception):
    """A start-up failure with a message for the operator."""


class DataDirLocked(ServeError):
    pass


class PortInUse(ServeError):
    def __init__(self, port: int, flag: str) -> None:
        super().__init__(
            f"port {port} is in use (another process listens there); stop it or choose another {flag}"
        )


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
    #: Where it listens (``host``, ``port``) and the option that chose the port (for messages).
    host: str
    port: int
    flag: str
    #: True once it answers its health check.
    healthy: Callable[[], bool]
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
            say(f"{self.name} did not stop within {timeout:g}s; killing it", "warning")
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
    replication_port: int = DEFAULT_REPLICATION_PORT,
    startup_timeout: float = 60.0,
    stop_timeout: float = 30.0,
    ready_file: Path | None = None,
) -> int:
    """Run catalog + blob + replication + gateway until Ctrl-C / SIGTERM; returns the exit status.

    A port of 0 picks a free one. ``ready_file``, when given, receives the REST URL and the three
    gRPC addresses (catalog, blob, replication; one per line) once everything is healthy.
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
                replication_port,
                startup_timeout,
                stop_timeout,
                ready_file,
            )
    except ServeError as e:
        say(str(e), "error")
        return 1


def _serve_locked(
    data_dir: Path,
    host: str,
    port: int,
    grpc_host: str,
    catalog_port: int,
    blob_port: int,
    replication_port: int,
    startup_timeout: float,
    stop_timeout: float,
    ready_file: Path | None,
) -> int:
    overridden = [k for k in _OWNED if k in os.environ]
    if overridden:
        names = ", ".join(overridden)
        say(f"serve sets {names} itself; ignoring the environment's", "warning")
    base = {k: v for k, v in os.environ.items() if k not in _OWNED}
    # One random token per stack: the services answer only calls that carry it (docs/security.md).
    from imgapi_common.internal_auth import TOKEN_SETTING

    base[TOKEN_SETTING] = base.get(TOKEN_SETTING) or secrets.token_urlsafe(32)
    base["PYTHONUNBUFFERED"] = "1"
    children = _children(data_dir, base, host, port, grpc_host, catalog_port, blob_port, replication_port)
    catalog, blob, replication, gateway = children
    rest_url = f"http://{_hostport(gateway.host, gateway.port)}"
    grpc_addrs = {c.name: _hostport(c.host, c.port) for c in (catalog, blob, replication)}

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        _ensure_ports_free(children)
        say(f"starting in {data_dir}", data_dir=str(data_dir))
        for group in ([catalog, blob], [replication], [gateway]):
            for child in group:
                child.start()
            _wait_healthy(group, startup_timeout, stop)
            if stop.is_set():
                return 130
            _ensure_own_listeners(group)
        lines = [rest_url, *(f"grpc://{a}" for a in grpc_addrs.values())]
        say(
            "ready",
            human=f"imgapi: ready\n"
            f"  REST (IMGAPI)      {rest_url}\n"
            f"  catalog gRPC       {grpc_addrs['catalog']}\n"
            f"  blob gRPC          {grpc_addrs['blob']}\n"
            f"  replication gRPC   {grpc_addrs['replication']}\n"
            f"  data directory     {data_dir}\n"
            f"Press Ctrl-C to stop.",
            rest=rest_url,
            **grpc_addrs,
            data_dir=str(data_dir),
        )
        if ready_file is not None:
            ready_file.write_text("\n".join(lines) + "\n")
        while not stop.wait(0.5):
            for child in children:
                code = child.exited()
                if code is not None:
                    say(f"{child.name} exited unexpectedly (status {code}); stopping", "error")
                    status = 1
                    stop.set()
                    break
        return status
    except ServeError as e:
        say(str(e), "error")
        return 1
    finally:
        if received:
            say("stopping")
        # The gateway first (no new requests reach the services), then the services.
        gateway.terminate()
        gateway.wait(stop_timeout)
        for child in (replication, blob, catalog):
            child.terminate()
        for child in (replication, blob, catalog):
            child.wait(stop_timeout)
        if ready_file is not None:
            with contextlib.suppress(FileNotFoundError):
                ready_file.unlink()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            say("stopped")


def _children(
    data_dir: Path,
    base: dict[str, str],
    host: str,
    port: int,
    grpc_host: str,
    catalog_port: int,
    blob_port: int,
    replication_port: int,
) -> list[Child]:
    """The four services (catalog, blob, replication, gateway), configured, not started."""
    dirs = {name: data_dir / name for name in ("catalog", "blobs", "replication")}
    for d in dirs.values():
        d.mkdir(exist_ok=True)
    catalog_port = catalog_port or _free_port(grpc_host)
    blob_port = blob_port or _free_port(grpc_host)
    replication_port = replication_port or _free_port(grpc_host)
    port = port or _free_port(host)
    bind = {
        "catalog": _hostport(grpc_host, catalog_port),
        "blob": _hostport(grpc_host, blob_port),
        "replication": _hostport(grpc_host, replication_port),
    }
    local = _connect_host(grpc_host)
    target = {
        "catalog": _hostport(local, catalog_port),
        "blob": _hostport(local, blob_port),
        "replication": _hostport(local, replication_port),
    }
    ping_url = f"http://{_hostport(_connect_host(host), port)}/ping"
    py = sys.executable
    return [
        Child(
            "catalog",
            [py, "-m", "catalog_service", "serve"],
            base | {"IMGAPI_CATALOG_BIND": bind["catalog"], "IMGAPI_CATALOG_DATA_DIR": str(dirs["catalog"])},
            grpc_host,
            catalog_port,
            "--catalog-port",
            lambda: _grpc_healthy(target["catalog"]),
        ),
        Child(
            "blob",
            [py, "-m", "blob_service"],
            base
            | {
                "IMGAPI_BLOB_BIND": bind["blob"],
                "IMGAPI_BLOB_BACKEND": "local",
                "IMGAPI_BLOB_DATA_DIR": str(dirs["blobs"]),
            },
            grpc_host,
            blob_port,
            "--blob-port",
            lambda: _grpc_healthy(target["blob"]),
        ),
        Child(
            "replication",
            [py, "-m", "replication", "serve"],
            base
            | {
                "IMGAPI_REPLICATION_BIND": bind["replication"],
                "IMGAPI_REPLICATION_DATA_DIR": str(dirs["replication"]),
                "IMGAPI_REPLICATION_CATALOG_TARGET": target["catalog"],
                "IMGAPI_REPLICATION_BLOB_TARGET": target["blob"],
            },
            grpc_host,
            replication_port,
            "--replication-port",
            lambda: _grpc_healthy(target["replication"]),
        ),
        Child(
            "gateway",
            [py, "-m", "gateway"],
            base
            | {
                "IMGAPI_GATEWAY_HOST": host,
                "IMGAPI_GATEWAY_PORT": str(port),
                "IMGAPI_GATEWAY_CATALOG_TARGET": target["catalog"],
                "IMGAPI_GATEWAY_BLOB_TARGET": target["blob"],
                "IMGAPI_GATEWAY_REPLICATION_TARGET": target["replication"],
            },
            host,
            port,
            "--port",
            lambda: _http_healthy(ping_url),
        ),
    ]


def _ensure_ports_free(children: list[Child]) -> None:
    """Refuse to start anything while another process listens on one of our ports."""
    for child in children:
        if port_in_use(child.host, child.port):
            raise PortInUse(child.port, child.flag)


def _ensure_own_listeners(children: list[Child]) -> None:
    """The health checks just passed: make sure our own children answered them."""
    for child in children:
        assert child.proc is not None
        if foreign_listener(child.port, child.proc.pid):
            raise PortInUse(child.port, child.flag)


def _wait_healthy(children: list[Child], timeout: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + timeout
    pending = list(children)
    while pending and not stop.is_set():
        for child in list(pending):
            code = child.exited()
            if code is not None:
                if port_in_use(child.host, child.port):  # it lost the race for its port
                    raise PortInUse(child.port, child.flag)
                raise ServeError(f"{child.name} exited during start-up (status {code}); see its log above")
            if child.healthy():
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
        description="Run catalog + blob + replication + gateway on this machine "
        "(SQLite + local files under DATA_DIR).",
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="default: ./var")
    p.add_argument("--host", default=DEFAULT_HOST, help="REST listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="REST port (default 8080; 0 = any)")
    p.add_argument("--grpc-host", default="127.0.0.1", help="gRPC listen address (default 127.0.0.1)")
    p.add_argument("--catalog-port", type=int, default=DEFAULT_CATALOG_PORT, help="default 8501; 0 = any")
    p.add_argument("--blob-port", type=int, default=DEFAULT_BLOB_PORT, help="default 8502; 0 = any")
    p.add_argument(
        "--replication-port", type=int, default=DEFAULT_REPLICATION_PORT, help="default 8503; 0 = any"
    )
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
        replication_port=a.replication_port,
        startup_timeout=a.startup_timeout,
        ready_file=a.ready_file,
    )


if __name__ == "__main__":
    sys.exit(main())
