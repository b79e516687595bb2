"""One writer per upload within a process (other replicas are guarded by S3 ETag checks)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class UploadLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, upload_id: str, timeout: float) -> Iterator[bool]:
        """Yields whether the lock of ``upload_id`` was obtained within ``timeout`` seconds."""
        with self._guard:
            lock, users = self._locks.get(upload_id, (threading.Lock(), 0))
            self._locks[upload_id] = (lock, users + 1)
        got = lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()
            with self._guard:
                lock, users = self._locks[upload_id]
                if users == 1:
                    del self._locks[upload_id]
                else:
                    self._locks[upload_id] = (lock, users - 1)
