"""``imgapi serve``: the embedded default -- catalog + blob + replication + gateway on one machine.

The catalog, blob and replication services and the gateway run in one child process (``python -m
imgapi_cli.monolith``: each service on its own gRPC port with its own settings, sharing one
interpreter, the gateway calling the catalog in-process; docs/performance.md); with ``--split`` each
gets its own process (``python -m catalog_service serve``, ``python -m blob_service``, ``python -m
replication serve``, ``python -m gateway``), the production shape. Each is configured through its ``IMGAPI_*``
environment variables: the catalog keeps a SQLite database under ``<data_dir>/catalog``,
the blob service keeps files under ``<data_dir>/blobs``, the replication service its job state under
``<data_dir>/replication`` (the gateway's ``/replication/jobs`` routes manage its jobs). Every other ``IMGAPI_*`` variable of the caller's environment passes through
unchanged (e.g. ``IMGAPI_CATALOG_MODE=public``), except the ones this command sets (listen
addresses, data directories, backend, service targets).

The supervisor holds an exclusive ``fcntl`` lock on ``<data_dir>/imgapi.lock`` for its whole
lifetime, so a second ``serve`` on the same directory fails at once with a clear message. Every
port must be free before anything starts, and once a service answers its health check the socket
listening on its port must belong to that service (imgapi_cli/ports.py): a health check answered by
another stack on the same port fails with ``port N is in use``, never "ready". It waits
for every service to report healthy (gRPC health check, ``GET /ping``; checked by a short-lived
``imgapi_cli.health_probe`` child so that the supervisor itself stays free of gRPC), prints where they listen,
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
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from imgapi_cli.supervise import (
    Child,
    Listener,
    ServeError,
    data_dir_lock,
    ensure_own_listeners,
    ensure_ports_free,
    say,
    wait_for_any_exit,
    wait_healthy,
)
from imgapi_common import deathsig
from imgapi_common.log_lines import TOKEN_SETTING

DEFAULT_DATA_DIR = Path("var")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_CATALOG_PORT = 8501
DEFAULT_BLOB_PORT = 8502
DEFAULT_REPLICATION_PORT = 8503

#: Settings this command owns; the caller's values for them are ignored (a warning says so).
_OWNED = (
    "IMGAPI_CATALOG_BIND",
    "IMGAPI_CATALOG_DATA_DIR",
    "IMGAPI_CATALOG_DATABASE_URL",
    "IMGAPI_CATALOG_AUTO_MIGRATE",
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


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


# --- the command --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    host: str
    port: int
    grpc_host: str
    catalog: int
    blob: int
    replication: int


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
    split: bool = False,
) -> int:
    """Run catalog + blob + replication + gateway until Ctrl-C / SIGTERM; returns the exit status.

    A port of 0 picks a free one. ``ready_file``, when given, receives the REST URL and the three
    gRPC addresses (catalog, blob, replication; one per line) once everything is healthy.
    ``split`` runs each service in its own process, as production does; by default catalog, blob,
    replication and the gateway share one process (imgapi_cli/monolith.py), each on its own port.
    """
    data_dir = data_dir.expanduser().resolve()
    ports = Ports(host, port, grpc_host, catalog_port, blob_port, replication_port)
    try:
        with data_dir_lock(data_dir):
            return _serve_locked(data_dir, ports, startup_timeout, stop_timeout, ready_file, split)
    except ServeError as e:
        say(str(e), "error")
        return 1


def _serve_locked(
    data_dir: Path,
    ports: Ports,
    startup_timeout: float,
    stop_timeout: float,
    ready_file: Path | None,
    split: bool,
) -> int:
    overridden = [k for k in _OWNED if k in os.environ]
    if overridden:
        names = ", ".join(overridden)
        say(f"serve sets {names} itself; ignoring the environment's", "warning")
    base = {k: v for k, v in os.environ.items() if k not in _OWNED}
    # One random token per stack: the services answer only calls that carry it (docs/security.md).
    base[TOKEN_SETTING] = base.get(TOKEN_SETTING) or secrets.token_urlsafe(32)
    base["PYTHONUNBUFFERED"] = "1"
    # Few malloc arenas: these processes are mostly single-threaded Python, and every extra arena
    # keeps its own free memory (docs/performance.md). An operator's own value wins.
    base.setdefault("MALLOC_ARENA_MAX", "2")
    groups, listeners, catalog_env = _plan(data_dir, base, _resolve(ports), split)
    gateway = groups[-1][0]
    children = [c for g in groups for c in g]
    rest_url = f"http://{_hostport(gateway.listeners[0].host, gateway.listeners[0].port)}"
    grpc_addrs = {name: _hostport(lst.host, lst.port) for name, lst in listeners.items()}

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        ensure_ports_free(children)
        say(f"starting in {data_dir}", data_dir=str(data_dir))
        _migrate_catalog(catalog_env, startup_timeout)
        for group in groups:
            for child in group:
                child.start()
            wait_healthy(group, startup_timeout, stop)
            if stop.is_set():
                return 130
            ensure_own_listeners(group)
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
        if ready_file is not None:  # whole or absent: a reader never sees it half written
            tmp = ready_file.with_name(ready_file.name + ".tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.replace(ready_file)
        return wait_for_any_exit(children, stop)
    except ServeError as e:
        say(str(e), "error")
        return 1
    finally:
        if received:
            say("stopping")
        # The gateway first (no new requests reach the services), then the services, the
        # replication service before the two it calls.
        gateway.terminate()
        gateway.wait(stop_timeout)
        services = [c for c in reversed(children) if c is not gateway]
        for child in services:
            child.terminate()
        for child in services:
            child.wait(stop_timeout)
        if ready_file is not None:
            with contextlib.suppress(FileNotFoundError):
                ready_file.unlink()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            say("stopped")


def _resolve(p: Ports) -> Ports:
    """Ports of 0 replaced by free ones."""
    return Ports(
        p.host,
        p.port or _free_port(p.host),
        p.grpc_host,
        p.catalog or _free_port(p.grpc_host),
        p.blob or _free_port(p.grpc_host),
        p.replication or _free_port(p.grpc_host),
    )


def _migrate_catalog(env: dict[str, str], timeout: float) -> None:
    """The catalog's schema to head in a short-lived ``python -m catalog_service migrate``, before
    the services start without migrating: the process that lives as long as the stack then never
    loads Alembic (~10 MiB resident; docs/performance.md)."""
    argv = [sys.executable, "-m", "catalog_service", "migrate"]
    try:
        done = subprocess.run(
            deathsig.wrap(argv), env=env, stdin=subprocess.DEVNULL, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ServeError(f"the catalog database was not migrated after {timeout:g}s") from None
    if done.returncode != 0:
        raise ServeError(f"the catalog database could not be migrated (exit status {done.returncode})")


def _plan(
    data_dir: Path, base: dict[str, str], p: Ports, split: bool
) -> tuple[list[list[Child]], dict[str, Listener], dict[str, str]]:
    """The children in start-up groups (the last one's first child is the gateway, or the one
    process hosting everything), configured, not started; the listener of each gRPC service by
    name; and the environment of the catalog's migration."""
    dirs = {name: data_dir / name for name in ("catalog", "blobs", "replication")}
    for d in dirs.values():
        d.mkdir(exist_ok=True)
    local = _connect_host(p.grpc_host)
    target = {
        "catalog": _hostport(local, p.catalog),
        "blob": _hostport(local, p.blob),
        "replication": _hostport(local, p.replication),
    }
    listeners = {
        name: Listener(p.grpc_host, port, f"--{name}-port", "grpc", target[name])
        for name, port in (("catalog", p.catalog), ("blob", p.blob), ("replication", p.replication))
    }
    env = {
        "catalog": {
            "IMGAPI_CATALOG_BIND": _hostport(p.grpc_host, p.catalog),
            "IMGAPI_CATALOG_DATA_DIR": str(dirs["catalog"]),
            "IMGAPI_CATALOG_AUTO_MIGRATE": "false",  # _migrate_catalog did it
        },
        "blob": {
            "IMGAPI_BLOB_BIND": _hostport(p.grpc_host, p.blob),
            "IMGAPI_BLOB_BACKEND": "local",
            "IMGAPI_BLOB_DATA_DIR": str(dirs["blobs"]),
        },
        "replication": {
            "IMGAPI_REPLICATION_BIND": _hostport(p.grpc_host, p.replication),
            "IMGAPI_REPLICATION_DATA_DIR": str(dirs["replication"]),
            "IMGAPI_REPLICATION_CATALOG_TARGET": target["catalog"],
            "IMGAPI_REPLICATION_BLOB_TARGET": target["blob"],
        },
    }
    py = sys.executable
    ping = f"http://{_hostport(_connect_host(p.host), p.port)}/ping"
    env["gateway"] = {
        "IMGAPI_GATEWAY_HOST": p.host,
        "IMGAPI_GATEWAY_PORT": str(p.port),
        "IMGAPI_GATEWAY_CATALOG_TARGET": target["catalog"],
        "IMGAPI_GATEWAY_BLOB_TARGET": target["blob"],
        "IMGAPI_GATEWAY_REPLICATION_TARGET": target["replication"],
    }
    rest = Listener(p.host, p.port, "--port", "http", ping)
    if not split:
        # One process; the REST listener first (the stack's URL, and the first stopped).
        everything = base | env["catalog"] | env["blob"] | env["replication"] | env["gateway"]
        services = Child(
            "services", [py, "-m", "imgapi_cli.monolith"], everything, [rest, *listeners.values()]
        )
        return [[services]], listeners, base | env["catalog"]
    gateway = Child("gateway", [py, "-m", "gateway"], base | env["gateway"], [rest])
    argv = {
        "catalog": [py, "-m", "catalog_service", "serve"],
        "blob": [py, "-m", "blob_service"],
        "replication": [py, "-m", "replication", "serve"],
    }
    c, b, r = (Child(n, argv[n], base | env[n], [listeners[n]]) for n in ("catalog", "blob", "replication"))
    return [[c, b], [r], [gateway]], listeners, base | env["catalog"]


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
    p.add_argument(
        "--split",
        action="store_true",
        help="run each service in its own process, as production does (default: catalog, blob and "
        "replication share one process)",
    )
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
        split=a.split,
    )


if __name__ == "__main__":
    sys.exit(main())
