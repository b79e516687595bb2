"""Cutting a byte stream into WriteChunks-sized pieces, for the sync and the async client alike,
and keeping the recent pieces a resumed upload may have to send again."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

Buffer = bytes | bytearray | memoryview

#: Message size: gRPC Python moves ~1 GB/s with 1 MiB messages, ~0.3 GB/s with 64 KiB ones.
CHUNK_BYTES = 1024 * 1024
#: A partly filled chunk waiting this long is sent anyway when more bytes arrive, so that a slow
#: but live source keeps the blob service's upload stream active (it cuts idle streams).
FLUSH_SECONDS = 5.0


class Rechunker:
    """Cuts pieces of any size into ``size``-byte chunks (the last may be shorter).

    Whole chunks lying inside one piece are handed out as views of it (no copy); the bytes around
    them are gathered in one reused buffer (one copy), so a view of it is valid only until the next
    call. A partial chunk goes out early once ``flush_seconds`` passed since the last chunk (0: after
    every piece, so nothing waits for more bytes).
    """

    def __init__(
        self,
        size: int = CHUNK_BYTES,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._view = memoryview(bytearray(size))
        self._have = 0
        self._since = clock()

    def cut(self, piece: Buffer) -> Iterator[memoryview]:
        """The chunks ``piece`` completes; consume each before asking for the next."""
        size = self.size
        data = memoryview(piece).cast("B")
        if self._have:
            n = min(size - self._have, len(data))
            self._view[self._have : self._have + n] = data[:n]
            self._have += n
            data = data[n:]
            if self._have == size:
                yield self._take()
        while len(data) >= size:
            self._since = self._clock()
            yield data[:size]
            data = data[size:]
        if self._clock() - self._since < self.flush_seconds:
            if len(data):  # the buffer is empty here: it was filled and taken, or data is used up
                self._view[: len(data)] = data
                self._have = len(data)
        elif self._have:
            yield self._take()
        elif len(data):
            self._since = self._clock()
            yield data

    def rest(self) -> memoryview | None:
        """What is left at the end of the stream (None: nothing)."""
        return self._take() if self._have else None

    def _take(self) -> memoryview:
        out = self._view[: self._have]
        self._have = 0
        self._since = self._clock()
        return out


def _stable(view: memoryview) -> bytes | memoryview:
    """``view`` as data that stays valid: views of immutable bytes as they are, others copied."""
    return view if isinstance(view.obj, bytes) else bytes(view)


def rechunk(
    data: Iterable[Buffer], size: int = CHUNK_BYTES, flush_seconds: float = 0.0
) -> Iterator[bytes | memoryview]:
    """The bytes of ``data`` in chunks of at most ``size``; each stays valid. By default nothing
    waits for more bytes: each piece goes out at once, big ones cut to ``size`` (the blocking
    callers read whole megabytes, and a stalled source must not hold back what it gave)."""
    cutter = Rechunker(size, flush_seconds)
    for piece in data:
        for chunk in cutter.cut(piece):
            yield _stable(chunk)
    last = cutter.rest()
    if last is not None:
        yield bytes(last)


async def arechunk(
    source: AsyncIterator[Buffer], size: int = CHUNK_BYTES, flush_seconds: float = FLUSH_SECONDS
) -> AsyncIterator[memoryview]:
    """:func:`rechunk` for an async source whose pieces are small (an HTTP body arrives in ~64 KiB
    pieces): they are gathered into whole chunks, a partial one flushed after ``flush_seconds``.
    Copies at most once: each chunk is valid only until the next one is requested, so the consumer
    must use it (encode it) right away."""
    cutter = Rechunker(size, flush_seconds)
    async for piece in source:
        for chunk in cutter.cut(piece):
            yield chunk
    last = cutter.rest()
    if last is not None:
        yield last


class Retained:
    """The most recent bytes sent, enough to resend from any offset the service may fall back to."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.chunks: deque[tuple[int, bytes | memoryview]] = deque()
        self.size = 0

    @property
    def start(self) -> int:
        return self.chunks[0][0] if self.chunks else -1

    def add(self, offset: int, data: bytes | memoryview) -> None:
        self.chunks.append((offset, data))
        self.size += len(data)
        while self.chunks and self.size - len(self.chunks[0][1]) >= self.window:
            self.size -= len(self.chunks.popleft()[1])

    def since(self, offset: int) -> Iterator[bytes | memoryview]:
        for start, data in list(self.chunks):
            end = start + len(data)
            if end <= offset:
                continue
            yield data if start >= offset else data[offset - start :]
