"""Start a child process that is signalled when its parent dies, without a ``preexec_fn``.

``python -m imgapi_common.deathsig PARENT_PID SIGNAL PROGRAM [ARGS...]`` asks Linux to send SIGNAL
to this process when its parent dies (``PR_SET_PDEATHSIG``, which survives ``exec``), checks that
the parent is still PARENT_PID (it may have died already), then executes PROGRAM in its place.

The usual way, a ``preexec_fn`` calling ``prctl``, runs Python in the child between ``fork`` and
``exec``. When the parent has other threads running, as soon as it has used gRPC, the forked child
can hang there on a lock one of those threads held (seen: every destination service of
``bench/replication.py`` hung at start). Without a ``preexec_fn`` ``subprocess`` uses ``vfork``/
``posix_spawn``, which run no Python in the child.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def wrap(argv: list[str], sig: signal.Signals = signal.SIGTERM) -> list[str]:
    """``argv`` run so that it receives ``sig`` when this process dies (Linux; unchanged elsewhere)."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-m", "imgapi_common.deathsig", str(os.getpid()), str(int(sig)), *argv]


def main(args: list[str]) -> int:
    if len(args) < 3:
        print("usage: python -m imgapi_common.deathsig PARENT_PID SIGNAL PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    parent, sig, argv = int(args[0]), int(args[1]), args[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, sig) != 0:
        print(f"deathsig: prctl failed (errno {ctypes.get_errno()})", file=sys.stderr)
    if os.getppid() != parent:
        return 1  # the parent is already gone: do not start an orphan
    os.execvp(argv[0], argv)
    return 127  # not reached: execvp replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
