"""Is a TCP port free, and is the process listening on it really ours?

``imgapi serve`` must never call "ready" a stack whose health checks were answered by someone else's
processes (another stack on the same ``--port`` / ``--catalog-port``). Two checks:

- before starting a child, :func:`port_in_use` tries to bind the port itself (``SO_REUSEADDR`` as
  every server sets, so a port in ``TIME_WAIT`` is not "in use", but never ``SO_REUSEPORT``: a
  listener that shares the port with gRPC's default ``SO_REUSEPORT`` still makes the bind fail);
- once the child answers its health check, :func:`foreign_listener` (Linux, from ``/proc``) checks
  that every socket listening on that port belongs to the child or one of its descendants. It
  closes the race between the first check and the child's own bind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

_PROC = Path("/proc")
_LISTEN = "0A"


def port_in_use(host: str, port: int) -> bool:
    """True when ``host:port`` cannot be bound because something already listens there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def listening_inodes(port: int) -> set[int] | None:
    """Socket inodes listening on TCP ``port`` (any address), or None where /proc cannot tell."""
    found: set[int] = set()
    tables = [_PROC / "net" / "tcp", _PROC / "net" / "tcp6"]
    if not any(t.exists() for t in tables):
        return None
    for table in tables:
        with contextlib.suppress(FileNotFoundError):
            for line in table.read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) > 9 and cols[3] == _LISTEN and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    found.add(int(cols[9]))
    return found


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in (_PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError):
                out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def process_tree_sockets(pid: int) -> set[int]:
    """Socket inodes held open by ``pid`` and all its descendants."""
    inodes: set[int] = set()
    pending, seen = [pid], set()
    while pending:
        p = pending.pop()
        if p in seen:
            continue
        seen.add(p)
        with contextlib.suppress(OSError):
            for fd in (_PROC / str(p) / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(int(target[8:-1]))
        pending.extend(_children(p))
    return inodes


def foreign_listener(port: int, pid: int) -> bool:
    """True when a socket listening on ``port`` is not held by ``pid`` or its descendants.

    Also true when nothing of ours listens there at all. False where /proc is unavailable (the
    bind check before start-up is then the only protection).
    """
    listeners = listening_inodes(port)
    if listeners is None:
        return False
    ours = process_tree_sockets(pid)
    return not listeners or not listeners <= ours
