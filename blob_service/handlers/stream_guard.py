"""Guarding the handler threads streams hold: a cap on uploads, idle timeouts on both directions.

Each WriteChunks stream holds one of the server's handler threads for as long as it lasts, most of
that time waiting for the client's next message. Two rules keep stalled or numerous uploads from
taking the threads downloads and metadata calls need:

* at most ``max_streams`` upload streams at a time (fewer than the handler threads); a stream
  beyond that is refused at once with ``TooManyUploads``, which the client may retry;
* a stream that waits longer than ``idle_seconds`` for its next message is cut (the RPC is
  cancelled: what was received is kept, the thread is freed). Time the service itself spends
  writing or hashing never counts: only waiting for the client does.

Downloads (ReadBlob) hold a thread too while the client does not take the bytes (HTTP/2 flow
control blocks the send): one whose client takes no message for ``download_idle_seconds`` is cut.

One watchdog thread serves every stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from blob_service.domain.errors import BlobError

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Watched:
    """One stream: since when it waits for the client (``None``: it does not), and how to cut it."""

    __slots__ = ("cancel", "cut", "messages", "name", "upload_id", "waiting_since")

    def __init__(self, name: str, cancel: Callable[[], None]) -> None:
        self.name = name
        self.cancel = cancel
        self.waiting_since: float | None = time.monotonic()
        self.cut = False
        self.upload_id = ""
        #: Messages received so far (each one is applied before the next is asked for).
        self.messages = 0


class StreamGuard:
    def __init__(self, max_streams: int, idle_seconds: float, download_idle_seconds: float) -> None:
        self.max_streams = max_streams
        self.idle_seconds = idle_seconds
        self.download_idle_seconds = download_idle_seconds
        self._lock = threading.Condition()
        self._active: set[_Watched] = set()
        self._reads: set[_Watched] = set()
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> int:
        """Upload streams in progress right now."""
        with self._lock:
            return len(self._active)

    def received_for(self, upload_id: str) -> int:
        """Messages the streams writing ``upload_id`` right now have received (0: none open)."""
        with self._lock:
            return sum(w.messages for w in self._active if w.upload_id == upload_id)

    @contextmanager
    def stream(self, name: str, cancel: Callable[[], None]) -> Iterator[_Watched]:
        """Admit one stream (or raise ``TooManyUploads``) and watch it until the block ends."""
        w = _Watched(name, cancel)
        with self._lock:
            if len(self._active) >= self.max_streams:
                raise BlobError(
                    "TooManyUploads",
                    f"{self.max_streams} uploads are in progress; retry later",
                    {"max_streams": str(self.max_streams)},
                )
            self._active.add(w)
            self._ensure_watchdog()
        try:
            yield w
        finally:
            with self._lock:
                self._active.discard(w)

    @property
    def downloads(self) -> int:
        """Download streams in progress right now."""
        with self._lock:
            return len(self._reads)

    @contextmanager
    def download(self, name: str, cancel: Callable[[], None]) -> Iterator[_Watched]:
        """Watch one download stream until the block ends (see :meth:`sent`)."""
        w = _Watched(name, cancel)
        w.waiting_since = None  # reading storage is the service's time, not the client's
        with self._lock:
            self._reads.add(w)
            self._ensure_watchdog()
        try:
            yield w
        finally:
            with self._lock:
                self._reads.discard(w)

    @staticmethod
    def sent(w: _Watched, source: Iterator[T]) -> Iterator[T]:
        """``source``'s items; the time until the client takes each is what the timeout measures."""
        for item in source:
            w.waiting_since = time.monotonic()
            yield item
            w.waiting_since = None
            w.messages += 1

    @staticmethod
    def received(w: _Watched, source: Iterator[T]) -> Iterator[T]:
        """``source``'s items; the waits for each of them are what the idle timeout measures."""
        while True:
            w.waiting_since = time.monotonic()
            try:
                item = next(source)
            except StopIteration:
                return
            finally:
                w.waiting_since = None
            w.messages += 1
            yield item

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    # --- the watchdog ---------------------------------------------------------------------------

    def _ensure_watchdog(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._watch, name="blob-stream-idle", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        tick = min(max(min(self.idle_seconds, self.download_idle_seconds) / 4, 0.01), 1.0)
        while True:
            with self._lock:
                if self._stopped:
                    return
                self._lock.wait(tick)
                now = time.monotonic()
                stale = [
                    (w, what, limit)
                    for group, what, limit in (
                        (self._active, "upload stream {} sent nothing", self.idle_seconds),
                        (self._reads, "download stream {} took nothing", self.download_idle_seconds),
                    )
                    for w in group
                    if not w.cut and w.waiting_since is not None and now - w.waiting_since > limit
                ]
                for w, _, _ in stale:
                    w.cut = True
            for w, what, limit in stale:
                log.warning("%s for %.1f s: cut", what.format(w.name), limit)
                try:
                    w.cancel()
                except Exception:
                    log.exception("cutting the idle stream %s failed", w.name)
