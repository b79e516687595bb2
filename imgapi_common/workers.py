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
