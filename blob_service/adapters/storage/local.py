"""Local-directory backend: the embedded default.

Layout under ``data_dir`` (every name derives from a validated id)::

    uploads/<upload_id>/state.json   the session (atomic replace)
    uploads/<upload_id>/data         bytes written so far (fsync at each checkpoint)
    uploads/<staging_id>             a small blob being put (one file, see below)
    blobs/<id[:2]>/<blob_id>/data    a committed upload ...
    blobs/<id[:2]>/<blob_id>/meta.json  ... and its size/digests; the directory appears atomically
    blobs/<id[:2]>/<blob_id>         a small blob (PutBlob) is one file instead: its meta.json
                                     text, a newline, then its bytes
    trash/                           blobs being deleted

A small blob is one file so that storing it durably takes one inode and two fsyncs (the file and
its directory after the rename) instead of three inodes and four: most images' icons and small
files are stored this way (docs/performance.md, section 10). Readers tell the two apart by the
path: ``<blob_id>/meta.json`` of a file is ``ENOTDIR``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from blob_service.adapters.storage.base import StagedConflict, StorageBusy
from blob_service.adapters.storage.direct import DIRECT_READ_MIN, DirectAppender, open_direct, read_direct
from blob_service.adapters.storage.files import fsync_dir, pread_exact, pwrite_all, write_atomic
from blob_service.domain.digests import Buffer
from blob_service.domain.ids import checked_id
from blob_service.domain.model import BlobMeta, UploadState


def _lock(fd: int, wait: float) -> bool:
    """An exclusive ``flock`` on ``fd`` within ``wait`` seconds (guards against other processes)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


class LocalWriter:
    def __init__(
        self,
        path: Path,
        committed: int,
        checkpoint_bytes: int,
        durable: bool,
        lock_wait: float,
        direct_io: bool = False,
    ) -> None:
        self._fd = os.open(path, os.O_RDWR)
        self._direct: DirectAppender | None = None
        try:
            if not _lock(self._fd, lock_wait):
                raise StorageBusy(f"{path} is being written by another process")
            size = os.fstat(self._fd).st_size
            if size < committed:
                raise StagedConflict(f"{path} holds {size} bytes, state says {committed}")
            if size > committed:  # written after the last checkpoint: never acknowledged, drop it
                os.ftruncate(self._fd, committed)
            dfd = open_direct(path) if direct_io else None
            if dfd is not None:
                self._direct = DirectAppender(self._fd, dfd, committed)
        except BaseException:
            os.close(self._fd)
            raise
        self._offset = committed
        self._checkpointed = committed
        # Checkpoints complete in the background, one at a time (see UploadStream): starting one
        # every half ``checkpoint_bytes`` keeps the bytes not yet saved below ``checkpoint_bytes``.
        self._every = max(checkpoint_bytes // 2, 1)
        self._durable = durable

    @property
    def offset(self) -> int:
        return self._offset

    def room(self) -> int:
        # Checkpoints fall on multiples of ``_every`` (after a resume, the first one comes early):
        # with direct writes those are buffer boundaries, where nothing waits in the buffer.
        due = (self._checkpointed // self._every + 1) * self._every
        return max(0, due - self._offset)

    def write(self, data: Buffer) -> None:
        if self._direct is not None:
            self._direct.write(data)
        else:
            pwrite_all(self._fd, data, self._offset)
        self._offset += len(data)

    def read_back(self, offset: int, length: int) -> bytes | None:
        if self._direct is not None:
            return self._direct.read(offset, length)
        return pread_exact(self._fd, length, offset)

    def checkpoint(self) -> dict[str, Any]:
        if self._offset != self._checkpointed:
            if self._direct is not None:
                self._direct.flush_tail()
            if self._durable:
                os.fsync(self._fd)
        self._checkpointed = self._offset
        return {}

    def mark(self) -> int:
        if self._direct is not None:
            self._direct.flush_tail()  # sync() makes the file durable, not the buffer
        self._checkpointed = self._offset
        return self._offset

    def sync(self) -> None:
        if self._durable:
            os.fsync(self._fd)  # safe while another thread writes; covers every byte up to the mark

    def saved(self) -> None:
        pass

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        os.close(self._fd)


#: A one-file blob's header (its meta.json text and the newline) is shorter than this (a few
#: hundred bytes: ids, digests, a date); JSON escapes newlines in strings, so the first one ends it.
_HEADER_MAX = 4096


def _header(fd: int, path: Path) -> tuple[bytes, int]:
    """The meta.json text at the start of the one-file blob ``path`` (open as ``fd``), and where
    its bytes start."""
    head = os.pread(fd, _HEADER_MAX, 0)
    end = head.find(b"\n")
    if end < 0:
        raise OSError(f"blob file {path} has no header")
    return head[:end], end + 1


def _remove(path: Path | str) -> None:
    """Remove a file or a directory tree, whichever ``path`` is (quietly, like ``rmtree``)."""
    try:
        os.unlink(path)
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)
    except FileNotFoundError:
        pass


class LocalStorage:
    name = "local"

    def __init__(
        self,
        data_dir: Path,
        checkpoint_bytes: int,
        durable: bool = True,
        lock_wait: float = 10.0,
        direct_io: bool = False,
        direct_reads: int = 4,
    ) -> None:
        self.root = data_dir.resolve()
        self._uploads = self.root / "uploads"
        self._blobs = self.root / "blobs"
        self._trash = self.root / "trash"
        for d in (self._uploads, self._blobs, self._trash):
            d.mkdir(parents=True, exist_ok=True)
        self._checkpoint_bytes = checkpoint_bytes
        self._durable = durable
        self._lock_wait = lock_wait
        self._direct_io = direct_io
        self._direct_reads = threading.BoundedSemaphore(direct_reads)  # 0: never
        #: Name of this backend's read-ahead threads (tells them apart from other instances').
        self.read_ahead_name = f"blob-read-ahead:{self.root}"

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"data directory {self.root} is not writable")

    # --- paths: only from validated ids -------------------------------------------------------

    def _upload_dir(self, upload_id: str) -> Path:
        return self._uploads / checked_id(upload_id, "upload id")

    def _blob_path(self, blob_id: str) -> Path:
        blob_id = checked_id(blob_id, "blob id")
        return self._blobs / blob_id[:2] / blob_id

    # --- uploads ------------------------------------------------------------------------------

    def create_upload(self, state: UploadState) -> UploadState:
        d = self._upload_dir(state.upload_id)
        d.mkdir()
        try:
            (d / "data").touch()
            self.save_upload(state)
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)  # e.g. ENOSPC: no stateless directory left
            raise
        return state

    def load_upload(self, upload_id: str) -> UploadState | None:
        try:
            raw = (self._upload_dir(upload_id) / "state.json").read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # none, or a small blob's staged file
            return None
        return UploadState.from_json(raw)

    def save_upload(self, state: UploadState) -> None:
        d = self._upload_dir(state.upload_id)
        if not d.is_dir():
            raise StagedConflict(f"upload {state.upload_id} was removed")
        write_atomic(d / "state.json", state.to_json(), self._durable)

    def open_writer(self, state: UploadState) -> LocalWriter:
        path = self._upload_dir(state.upload_id) / "data"
        if not path.exists():
            raise StagedConflict(f"upload {state.upload_id} has no staged data")
        return LocalWriter(
            path, state.offset, self._checkpoint_bytes, self._durable, self._lock_wait, self._direct_io
        )

    def commit_upload(self, state: UploadState, meta: BlobMeta) -> None:
        final = self._blob_path(meta.blob_id)
        if final.exists():  # a repeated commit after a crash between rename and state save
            return
        up = self._upload_dir(state.upload_id)
        stage = up / "blob"
        stage.mkdir(exist_ok=True)
        if (up / "data").exists():
            os.replace(up / "data", stage / "data")
        if not (stage / "data").exists():
            raise StagedConflict(f"upload {state.upload_id} lost its data")
        write_atomic(stage / "meta.json", meta.to_json(), self._durable)
        self._into_place(stage, final)

    def _into_place(self, stage: Path | str, final: Path) -> None:
        """Rename a staged blob to ``final`` and make that durable. The first blob of a prefix
        makes ``blobs/<id[:2]>``, which is synced into ``blobs/`` before the blob goes in (else a
        power cut could lose the directory and the blob with it)."""
        try:
            os.rename(stage, final)
        except FileNotFoundError:
            if not os.path.exists(stage):
                raise
            final.parent.mkdir(exist_ok=True)
            if self._durable:
                fsync_dir(self._blobs)
            os.rename(stage, final)
        if self._durable:
            fsync_dir(final.parent)

    def delete_upload(self, state: UploadState) -> None:
        shutil.rmtree(self._upload_dir(state.upload_id), ignore_errors=True)

    def put_blob(self, meta: BlobMeta, data: Buffer, staging_id: str) -> None:
        """One file (the meta.json text, a newline, the bytes) written as ``uploads/<staging_id>``
        (no state: the orphan sweep removes it after a crash), synced, renamed into place and its
        directory synced: the blob appears whole or not at all, and is durable when this returns."""
        stage = os.fspath(self._upload_dir(staging_id))
        final = self._blob_path(meta.blob_id)
        fd = os.open(stage, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            try:
                pwrite_all(fd, b"".join((meta.to_json(), b"\n", data)), 0)
                if self._durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._into_place(stage, final)
        except BaseException:
            _remove(stage)
            _remove(final)  # renamed but not synced: the id is this call's own, nobody refers to it
            raise

    def discard_orphan(self, upload_id: str, before: datetime) -> bool:
        d = self._upload_dir(upload_id)
        try:
            if (d / "state.json").exists() or d.stat().st_mtime >= before.timestamp():
                return False
        except FileNotFoundError:
            return False
        _remove(d)
        return True

    def list_uploads(self) -> Iterator[str]:
        for entry in os.scandir(self._uploads):
            if len(entry.name) == 32:  # an upload's directory or a small blob's staged file
                yield entry.name

    # --- blobs --------------------------------------------------------------------------------

    def stat_blob(self, blob_id: str) -> BlobMeta | None:
        path = self._blob_path(blob_id)
        try:
            try:
                return BlobMeta.from_json((path / "meta.json").read_bytes())
            except NotADirectoryError:  # a one-file blob
                fd = os.open(path, os.O_RDONLY)
                try:
                    return BlobMeta.from_json(_header(fd, path)[0])
                finally:
                    os.close(fd)
        except FileNotFoundError:
            return None

    def read_blob(self, blob_id: str, offset: int, length: int, chunk: int) -> Iterator[Buffer]:
        blob = self._blob_path(blob_id)
        path = blob / "data"
        # Direct reads hold 2 threads and 16 MiB each: a few at a time. The others (many clients
        # pulling one popular image at once) read through the page cache, which then serves them.
        # (A one-file blob is never this long: its ``data`` path is not looked at here.)
        if self._direct_io and length >= DIRECT_READ_MIN and self._direct_reads.acquire(blocking=False):
            try:
                dfd = open_direct(path, os.O_RDONLY)
                if dfd is not None:
                    try:
                        yield from read_direct(dfd, offset, length, chunk, self.read_ahead_name)
                    finally:
                        os.close(dfd)
                    return
            finally:
                self._direct_reads.release()
        try:
            fd = os.open(path, os.O_RDONLY)
        except NotADirectoryError:  # a one-file blob: its bytes follow the header
            fd = os.open(blob, os.O_RDONLY)
            try:
                offset += _header(fd, blob)[1]
            except BaseException:
                os.close(fd)
                raise
        try:
            end = offset + length
            while offset < end:
                data = os.pread(fd, min(chunk, end - offset), offset)
                if not data:
                    raise OSError(f"blob {blob_id} ends at {offset}, expected {end}")
                offset += len(data)
                yield data
        finally:
            os.close(fd)

    def delete_blob(self, blob_id: str) -> bool:
        src = self._blob_path(blob_id)
        dst = self._trash / f"{blob_id}.{uuid.uuid4().hex}"
        try:
            os.rename(src, dst)
        except FileNotFoundError:
            return False
        _remove(dst)
        return True
