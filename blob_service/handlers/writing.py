"""One WriteChunks stream applied to an upload: offsets, idempotent repeats, checksums, checkpoints.

The caller holds the upload's lock. Bytes become the committed offset at checkpoints: whenever the
backend says one is due (a full S3 part, ``checkpoint_bytes`` locally) and when the stream ends,
whether it ends well, with an error, or by the client going away. A checkpoint saves the offset
together with the digest state for exactly those bytes.

On a backend that can sync in the background (local files), the checkpoints due mid-stream
complete on a helper thread while the stream keeps receiving, writing and hashing: the digest state
comes from a snapshot the hash workers take when they reach the checkpoint's offset (no draining),
the helper fsyncs and then saves the state. One such checkpoint is in flight at a time, and the
stream's last checkpoint is synchronous, so the offset a stream reports is always saved.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from blob_client.wire import crc32
from blob_service.adapters.storage.base import Storage, SyncsInBackground, UploadWriter
from blob_service.domain.digest_pipeline import DigestPipeline, Snapshot
from blob_service.domain.digests import Buffer, DigestSet
from blob_service.domain.errors import BlobError, offset_mismatch, size_exceeded
from blob_service.domain.model import UploadState

_REREAD_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    data: Buffer
    offset: int | None = None
    crc32: int | None = None


def restore_digests(state: UploadState, writer: UploadWriter, exportable: bool) -> DigestSet | None:
    """The digest state at ``state.offset``: from the saved state, else by re-reading the bytes.

    ``None`` when neither works (the state was saved by another OpenSSL, and S3 cannot read parts
    back): the stream then goes on unhashed, and the commit hashes the assembled blob instead
    (see ``Reassembles``)."""
    digests = DigestSet.restore(state.hash_state) if exportable else None
    if digests is not None:
        return digests
    digests = DigestSet.new(allow_export=exportable)
    pos = 0
    while pos < state.offset:
        n = min(_REREAD_CHUNK, state.offset - pos)
        data = writer.read_back(pos, n)
        if data is None:
            return None
        digests.update(data)
        pos += n
    return digests


class _Unhashed:
    """Stands in for the digest pipeline of a stream whose digest state is lost: its checkpoints
    save no digest state, so the commit computes the digests from the stored bytes."""

    def feed(self, data: Buffer) -> None:
        pass

    def snapshot(self) -> Snapshot:
        return Snapshot(0)  # result(): None

    def close(self) -> None:
        pass


class UploadStream:
    def __init__(
        self, storage: Storage, state: UploadState, exportable: bool, clock: Callable[[], datetime]
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.state = state
        self.writer = storage.open_writer(state)
        try:
            digests = restore_digests(state, self.writer, exportable)
            self.pipeline: DigestPipeline | _Unhashed = (
                DigestPipeline(digests) if digests is not None else _Unhashed()
            )
        except BaseException:
            self.writer.close()
            raise
        self._pos: int | None = None
        self._background = self.writer if isinstance(self.writer, SyncsInBackground) else None
        self._pending: _Background | None = None

    def apply(self, chunks: Iterable[Chunk]) -> UploadState:
        """Apply every chunk, then checkpoint; on any failure checkpoint what was accepted, re-raise."""
        try:
            for chunk in chunks:
                self._apply(chunk)
        finally:
            try:
                try:
                    self._wait_pending()
                finally:
                    self.checkpoint()
            finally:
                self.pipeline.close()
                self.writer.close()
        return self.state

    def _apply(self, chunk: Chunk) -> None:
        w = self.writer
        if self._pos is None:
            if chunk.offset is None:
                raise BlobError("InvalidRequest", "the first chunk of a stream must carry its offset")
            self._pos = chunk.offset
        elif chunk.offset is not None and chunk.offset != self._pos:
            raise offset_mismatch(w.offset, f"chunk offset {chunk.offset} does not follow {self._pos}")
        if chunk.crc32 is not None and crc32(chunk.data) != chunk.crc32:
            raise BlobError(
                "ChunkChecksum",
                f"crc32 mismatch for the chunk at {self._pos}",
                {"current_offset": str(w.offset)},
            )
        data = chunk.data
        if self._pos > w.offset:
            raise offset_mismatch(w.offset, f"offset {self._pos} is beyond the committed offset {w.offset}")
        if self._pos < w.offset:
            n = min(len(data), w.offset - self._pos)
            stored = w.read_back(self._pos, n)
            if stored is None or stored != data[:n]:
                why = "differs from" if stored is not None else "cannot be compared with"
                raise offset_mismatch(w.offset, f"chunk at {self._pos} {why} the stored bytes")
            self._pos += n
            data = data[n:] if n < len(data) else b""
        if data:
            self._append(data)

    def _append(self, data: Buffer) -> None:
        w = self.writer
        if w.offset + len(data) > self.state.max_size:
            raise size_exceeded(w.offset, self.state.max_size)
        while data:
            room = w.room()
            if room == 0:
                if self._background is not None:
                    self._begin_checkpoint(self._background)
                else:
                    self.checkpoint()
                continue
            piece = data if len(data) <= room else data[:room]
            data = b"" if piece is data else data[room:]
            w.write(piece)
            self.pipeline.feed(piece)
            assert self._pos is not None
            self._pos += len(piece)

    def checkpoint(self) -> None:
        """Make every byte written durable and save the state (synchronously)."""
        self._wait_pending()
        if self.writer.offset == self.state.offset:
            return
        offset = self.writer.offset
        snap = self.pipeline.snapshot()  # the hashers catch up while the writer makes bytes durable
        staging = self.writer.checkpoint()
        state = replace(self.state, offset=offset, staging=staging, hash_state=snap.result()).touched(
            self.clock()
        )
        self.storage.save_upload(state)
        self.state = state
        self.writer.saved()

    def _begin_checkpoint(self, writer: SyncsInBackground) -> None:
        """Start a checkpoint at the current offset; it completes on a helper thread."""
        self._wait_pending()
        snap = self.pipeline.snapshot()
        offset = writer.mark()
        self._pending = _Background(lambda: self._finish_checkpoint(writer, offset, snap))

    def _finish_checkpoint(self, writer: SyncsInBackground, offset: int, snap: Snapshot) -> None:
        writer.sync()
        hash_state = snap.result()
        state = replace(self.state, offset=offset, staging={}, hash_state=hash_state).touched(self.clock())
        self.storage.save_upload(state)
        self.state = state

    def _wait_pending(self) -> None:
        """Wait for the checkpoint in flight, if any; its failure is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.wait()


class _Background(threading.Thread):
    """Runs one function on its own thread; ``wait`` joins it and re-raises its failure."""

    def __init__(self, fn: Callable[[], None]) -> None:
        super().__init__(daemon=True, name="blob-checkpoint")
        self._fn = fn
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._fn()
        except BaseException as e:
            self._error = e

    def wait(self) -> None:
        self.join()
        if self._error is not None:
            raise self._error
