"""The bandwidth limit of a replication job: a token bucket shared by all of its copies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator


class RateLimiter:
    """A token bucket shared by every copy of a job (bytes/s; ``rate`` 0 = unlimited)."""

    def __init__(self, rate: int, burst: int | None = None) -> None:
        self.rate = rate
        self.burst = burst or max(rate // 4, 64 * 1024)
        self._tokens = float(self.burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)

    def pieces(self, data: Iterable[bytes]) -> Iterator[bytes]:
        """``data`` re-cut so that no piece exceeds the burst, each paid for before it is yielded."""
        step = self.burst if self.rate > 0 else 1 << 62
        for block in data:
            for i in range(0, len(block), step):
                piece = block[i : i + step] if len(block) > step else block
                self.take(len(piece))
                yield piece
