"""A background thread that periodically removes expired uploads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Reaper(threading.Thread):
    def __init__(self, reap: Callable[[], int], interval: float) -> None:
        super().__init__(daemon=True, name="blob-reaper")
        self._reap = reap
        self._interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                n = self._reap()
                if n:
                    log.info("reaped %d expired upload(s)", n)
            except Exception:
                log.exception("reaping expired uploads failed")

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=30)
