"""Several worker processes serving one gRPC port (SO_REUSEPORT), for CPU-bound Python services.

A Python process serves gRPC on one core at a time (the GIL); ``run_workers`` starts ``n``
processes that each build their own server on the same port, lets the kernel spread connections
across them, forwards SIGTERM/SIGINT, and returns when they have all stopped. The parent creates no
gRPC objects (gRPC does not survive a fork), and children are spawned, not forked.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
from collections.abc import Callable
from typing import Any


def run_workers(n: int, target: Callable[..., Any], *args: Any) -> int:
    """Run ``target(worker_index, *args)`` in ``n`` spawned processes until they all exit."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=(i, *args), name=f"worker-{i}") for i in range(n)]
    for p in procs:
        p.start()

    def _forward(signum: int, _frame: Any) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    for p in procs:
        p.join()
    return max((p.exitcode or 0) for p in procs)


#: Initial metadata a service sends with a cheap, idempotent RPC (the catalog: GetServerConfig) to
#: name the process that answered: ``<index>/<count>`` of its worker processes, and an id unique on
#: the network. The kernel spreads *connections* over SO_REUSEPORT workers at random (with 4
#: connections to 2 workers, all 4 land on one worker 1 time in 8), so a client holding several
#: connections uses this to even them out (gateway/adapters/balance.py).
WORKER_KEY = "imgapi-worker"
WORKER_ID_KEY = "imgapi-worker-id"


def worker_metadata(index: int, count: int) -> tuple[tuple[str, str], ...]:
    return ((WORKER_KEY, f"{index}/{count}"), (WORKER_ID_KEY, f"{socket.gethostname()}:{os.getpid()}"))
