"""Hash a stream on worker threads so hashing overlaps with receiving and writing.

The digests are split over two threads of similar cost: MD5 (the slowest, ~0.7 GB/s) alone, and
SHA-1 + SHA-256 together (each ~1.1 GB/s with SHA-NI). Each thread takes whole ~1 MiB chunks from a
small bounded queue (back-pressure keeps memory flat) and feeds them to OpenSSL in one call, which
releases the GIL; so both threads proceed in parallel with each other and with the gRPC thread.
Two threads rather than one per digest: fewer hand-offs and less GIL contention on 2 cores, for the
same critical path (MD5).

A checkpoint needs the digest state for exactly the bytes it makes durable, without stopping the
pipeline: :meth:`DigestPipeline.snapshot` queues a marker behind the bytes fed so far, and each
worker exports its hashers' state when it reaches the marker, then goes on hashing.
"""

from __future__ import annotations

import queue
import threading

from blob_service.domain.digests import ALGORITHMS, Buffer, Digests, DigestSet, Hasher

#: Chunks (of ~1 MiB) a slow hasher may lag behind; bounds the memory held per stream.
_QUEUE_CHUNKS = 8
#: Below this, hashing inline is cheaper than handing off to threads.
_INLINE_BYTES = 256 * 1024
#: Which digests share a thread: the costs of the groups are about equal.
GROUPS: tuple[tuple[str, ...], ...] = (("md5",), ("sha1", "sha256"))


class Snapshot:
    """The exported digest state at one point of the stream, filled in by the workers."""

    def __init__(self, parts: int) -> None:
        self._left = parts
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._state: dict[str, str | None] = {}
        self._error: BaseException | None = None
        if parts == 0:
            self._done.set()

    def _fill(self, state: dict[str, str | None], error: BaseException | None) -> None:
        with self._lock:
            self._state.update(state)
            if error is not None and self._error is None:
                self._error = error
            self._left -= 1
            if self._left == 0:
                self._done.set()

    @classmethod
    def of(cls, digests: DigestSet) -> Snapshot:
        snap = cls(0)
        snap._state = {n: h.export() for n, h in digests.hashers.items()}
        return snap

    def result(self) -> dict[str, str] | None:
        """The state (as :meth:`DigestSet.export`: ``None`` when not exportable); waits for it."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        out: dict[str, str] = {}
        for name in ALGORITHMS:
            value = self._state.get(name)
            if value is None:
                return None
            out[name] = value
        return out


_Item = Buffer | Snapshot | None


class _Worker(threading.Thread):
    def __init__(self, hashers: list[tuple[str, Hasher]]) -> None:
        super().__init__(daemon=True, name="blob-hash")
        self.hashers = hashers
        self.queue: queue.Queue[_Item] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if isinstance(item, Snapshot):
                    state = {} if self.error is not None else {n: h.export() for n, h in self.hashers}
                    item._fill(state, self.error)
                elif self.error is None:
                    for _, h in self.hashers:
                        h.update(item)
            except BaseException as e:  # reported by drain() and snapshots
                self.error = e
            finally:
                self.queue.task_done()


class DigestPipeline:
    """Feeds a :class:`DigestSet` from a producer thread; ``drain`` before reading its state."""

    def __init__(self, digests: DigestSet) -> None:
        self.digests = digests
        self._workers: list[_Worker] = []

    def _start(self) -> None:
        hashers = self.digests.hashers
        groups = [[(n, hashers[n]) for n in group if n in hashers] for group in GROUPS]
        self._workers = [_Worker(g) for g in groups if g]
        for w in self._workers:
            w.start()

    def feed(self, data: Buffer) -> None:
        if not self._workers:
            if len(data) < _INLINE_BYTES:
                self.digests.update(data)
                return
            self._start()
        for w in self._workers:
            w.queue.put(data)

    def snapshot(self) -> Snapshot:
        """The digest state after every byte fed so far, without waiting for the hashers."""
        if not self._workers:
            return Snapshot.of(self.digests)
        snap = Snapshot(len(self._workers))
        for w in self._workers:
            w.queue.put(snap)
        return snap

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
