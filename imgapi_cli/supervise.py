"""The child processes of ``imgapi serve``: start, health, port ownership, stop.

The supervisor lives as long as the stack, so it stays small: it imports neither gRPC nor an HTTP
client. Health checks run in a short-lived ``python -m imgapi_cli.health_probe`` child per start-up
group; port checks read the kernel's socket tables (imgapi_cli/ports.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from imgapi_cli.ports import foreign_listener, port_in_use
from imgapi_common import deathsig
from imgapi_common.log_lines import is_terminal, json_line


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


@dataclass
class Listener:
    """One port a child listens on, the option that chose it, and its health check: a gRPC
    target (``grpc``) or a URL answering 200 (``http``)."""

    host: str
    port: int
    flag: str
    kind: str
    check: str


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    listeners: list[Listener]
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


def ensure_ports_free(children: list[Child]) -> None:
    """Refuse to start anything while another process listens on one of our ports."""
    for child in children:
        for lst in child.listeners:
            if port_in_use(lst.host, lst.port):
                raise PortInUse(lst.port, lst.flag)


def ensure_own_listeners(children: list[Child]) -> None:
    """The health checks just passed: make sure our own children answered them."""
    for child in children:
        assert child.proc is not None
        for lst in child.listeners:
            if foreign_listener(lst.port, child.proc.pid):
                raise PortInUse(lst.port, lst.flag)


def _probe(children: list[Child], env: dict[str, str], timeout: float) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "imgapi_cli.health_probe", "--timeout", f"{timeout:g}"]
    for child in children:
        for lst in child.listeners:
            argv += [f"--{lst.kind}", lst.check]
    return subprocess.Popen(deathsig.wrap(argv), env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_healthy(children: list[Child], timeout: float, stop: threading.Event) -> None:
    """Return once every listener of ``children`` passes its health check (or ``stop`` is set)."""
    probe = _probe(children, children[0].env, timeout)
    try:
        while not stop.is_set():
            for child in children:
                code = child.exited()
                if code is not None:
                    for lst in child.listeners:
                        if port_in_use(lst.host, lst.port):  # it lost the race for its port
                            raise PortInUse(lst.port, lst.flag)
                    raise ServeError(
                        f"{child.name} exited during start-up (status {code}); see its log above"
                    )
            status = probe.poll()
            if status == 0:
                return
            if status is not None:
                names = ", ".join(c.name for c in children)
                raise ServeError(f"{names} not healthy after {timeout:g}s")
            stop.wait(0.1)
    finally:
        if probe.poll() is None:
            probe.terminate()
        probe.wait()


def wait_for_any_exit(children: list[Child], stop: threading.Event) -> int:
    """Block until ``stop`` is set (0) or a child exits (1, after saying which)."""
    while not stop.wait(0.5):
        for child in children:
            code = child.exited()
            if code is not None:
                say(f"{child.name} exited unexpectedly (status {code}); stopping", "error")
                stop.set()
                return 1
    return 0


#: The lock file that keeps two stacks off one data directory.
LOCK_NAME = "imgapi.lock"


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
