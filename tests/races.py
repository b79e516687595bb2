"""Start several callables at the same instant, to race them on shared state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def race(*fns: Callable[[], T]) -> list[T]:
    """Run the callables at once (a barrier releases them together); their results in order."""
    barrier = threading.Barrier(len(fns))

    def go(fn: Callable[[], T]) -> T:
        barrier.wait(10)
        return fn()

    with ThreadPoolExecutor(len(fns)) as pool:
        return list(pool.map(go, fns))
