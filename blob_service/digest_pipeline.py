"""Hash a stream on worker threads so hashing overlaps with receiving and writing.

Each digest gets its own thread and a small bounded queue (back-pressure keeps memory flat): the
three digests then proceed in parallel with each other and with the gRPC thread, since both the
OpenSSL calls and file I/O release the GIL.
"""

from __future__ import annotations

import queue
import threading

from blob_service.digests import Digests, DigestSet, Hasher

#: Chunks (of ~1 MiB) a slow hasher may lag behind; bounds the memory held per stream.
_QUEUE_CHUNKS = 8
#: Below this, hashing inline is cheaper than handing off to threads.
_INLINE_BYTES = 256 * 1024


class _Worker(threading.Thread):
    def __init__(self, hasher: Hasher) -> None:
        super().__init__(daemon=True, name="blob-hash")
        self.hasher = hasher
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            data = self.queue.get()
            try:
                if data is None:
                    return
                if self.error is None:
                    self.hasher.update(data)
            except BaseException as e:  # reported by drain()
                self.error = e
            finally:
                self.queue.task_done()


class DigestPipeline:
    """Feeds a :class:`DigestSet` from a producer thread; ``drain`` before reading its state."""

    def __init__(self, digests: DigestSet) -> None:
        self.digests = digests
        self._workers: list[_Worker] = []

    def _start(self) -> None:
        self._workers = [_Worker(h) for h in self.digests.hashers.values()]
        for w in self._workers:
            w.start()

    def feed(self, data: bytes) -> None:
        if not self._workers:
            if len(data) < _INLINE_BYTES:
                self.digests.update(data)
                return
            self._start()
        for w in self._workers:
            w.queue.put(data)

    def drain(self) -> DigestSet:
        """Wait until every fed byte is hashed; the set then reflects the whole stream."""
        for w in self._workers:
            w.queue.join()
        for w in self._workers:
            if w.error is not None:
                raise w.error
        return self.digests

    def digests_now(self) -> Digests:
        return self.drain().digests()

    def close(self) -> None:
        for w in self._workers:
            w.queue.put(None)
        for w in self._workers:
            w.join()
        self._workers = []
