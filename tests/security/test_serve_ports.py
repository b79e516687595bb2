"""``imgapi serve`` never calls "ready" a stack whose health checks someone else answered.

With ``--port`` or ``--catalog-port`` already taken (by another stack, or by any listener), the real
command fails with ``port N is in use``, exits non-zero without a traceback, starts none of its
services and leaves the other stack alone. The ownership check behind the start-up race
(imgapi_cli/ports.py) is checked against real sockets and processes.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from imgapi_cli.ports import foreign_listener, port_in_use
from tests.deploy.procs import Proc, Procs, grpc_serving, procs_group

SERVE = [sys.executable, "-m", "imgapi_cli.serve"]
ZERO_PORTS = {"--port": "0", "--catalog-port": "0", "--blob-port": "0", "--replication-port": "0"}


def serve_args(data: Path, **ports: str) -> list[str]:
    merged = ZERO_PORTS | {f"--{k.replace('_', '-')}": v for k, v in ports.items()}
    return [*SERVE, "--data-dir", str(data), *(x for kv in merged.items() for x in kv)]


@pytest.fixture()
def procs(tmp_path: Path) -> Iterator[Procs]:
    logs = tmp_path / "logs"
    logs.mkdir()
    with procs_group(logs) as group:
        yield group


@pytest.fixture()
def other_stack(tmp_path: Path, procs: Procs) -> Iterator[tuple[Proc, list[str]]]:
    """Somebody else's stack, started by the real command on free ports."""
    ready = tmp_path / "other.ready"
    proc = procs.spawn("other", [*serve_args(tmp_path / "other"), "--ready-file", str(ready)])
    deadline = time.monotonic() + 90
    while not ready.exists():
        assert proc.alive() and time.monotonic() < deadline, proc.tail()
        time.sleep(0.1)
    yield proc, ready.read_text().splitlines()


def run_serve(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def assert_refused(out: subprocess.CompletedProcess[str], port: int) -> None:
    assert out.returncode == 1, out
    assert f"port {port} is in use" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    assert "ready" not in out.stdout, out.stdout


def test_catalog_port_of_another_stack(tmp_path: Path, other_stack: tuple[Proc, list[str]]) -> None:
    other, addresses = other_stack
    rest_url, catalog = addresses[0], addresses[1].removeprefix("grpc://")
    catalog_port = int(catalog.rsplit(":", 1)[1])
    before = {p.pid for p in psutil.Process(other.popen.pid).children()}

    out = run_serve(serve_args(tmp_path / "mine", catalog_port=str(catalog_port)))

    assert_refused(out, catalog_port)
    # The other stack is untouched and still the only one on its ports.
    assert other.alive() and {p.pid for p in psutil.Process(other.popen.pid).children()} == before
    assert grpc_serving(catalog)
    assert httpx.get(f"{rest_url}/ping", timeout=5).status_code == 200


def test_rest_port_of_another_stack(tmp_path: Path, other_stack: tuple[Proc, list[str]]) -> None:
    other, addresses = other_stack
    port = int(addresses[0].rsplit(":", 1)[1])
    out = run_serve(serve_args(tmp_path / "mine", port=str(port)))
    assert_refused(out, port)
    assert other.alive()


def test_rest_port_held_by_any_listener(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = run_serve(serve_args(tmp_path / "mine", port=str(port)))
    assert_refused(out, port)
    assert "--port" in out.stderr  # names the option to change


def test_ownership_check_sees_a_foreign_listener() -> None:
    """The check made after the health checks pass: a listener held by a process outside the
    child's tree is foreign; one held by the process itself is not; no listener at all is foreign."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            assert port_in_use("127.0.0.1", port)
            assert foreign_listener(port, sleeper.pid)
            assert not foreign_listener(port, psutil.Process().pid)
        assert not port_in_use("127.0.0.1", port)
        assert foreign_listener(port, psutil.Process().pid)
    finally:
        sleeper.kill()
        sleeper.wait()
