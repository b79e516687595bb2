"""The blob operations, free of gRPC: uploads (start, write, status, commit, abort) and blobs."""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import datetime, timedelta

from blob_service.adapters.storage.base import (
    Reassembles,
    StagedConflict,
    Storage,
    StorageBusy,
    StorageUnavailable,
)
from blob_service.domain.digests import ALGORITHMS, Buffer, Digests, DigestSet, exportable
from blob_service.domain.errors import (
    BlobError,
    blob_not_found,
    size_exceeded,
    storage_down,
    upload_not_found,
)
from blob_service.domain.ids import checked_id, new_id
from blob_service.domain.model import BlobMeta, UploadState, iso, utcnow
from blob_service.handlers.locks import UploadLocks
from blob_service.handlers.reaper import Reaper
from blob_service.handlers.stream_guard import StreamGuard
from blob_service.handlers.writing import Chunk, UploadStream, restore_digests
from blob_service.settings import BlobSettings
from imgapi_common.observability import request_id

#: errno values that mean the storage is full (the disk, or the service's quota on it).
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

log = logging.getLogger(__name__)

_HEX_LEN = {"sha1": 40, "md5": 32, "sha256": 64}


@contextmanager
def storage_errors() -> Iterator[None]:
    """Backend failures as blob errors (domain errors pass through)."""
    try:
        yield
    except BlobError:
        raise
    except StorageUnavailable as e:
        raise storage_down(str(e)) from e
    except StorageBusy as e:
        raise BlobError("UploadBusy", str(e)) from e
    except StagedConflict as e:
        raise BlobError("Internal", f"staged upload is inconsistent: {e}") from e
    except OSError as e:
        if e.errno in _FULL:
            log.error("storage full: %s", e, extra={"request_id": request_id.get()})
            raise BlobError("InsufficientStorage", f"storage is full: {e.strerror}") from e
        raise BlobError("Internal", f"storage failure: {e.__class__.__name__}: {e}") from e


def checked_digests(given: dict[str, str]) -> dict[str, str]:
    """Non-empty expected digests, lower-cased; a malformed one is InvalidRequest."""
    out: dict[str, str] = {}
    for alg, value in given.items():
        if not value:
            continue
        if alg not in _HEX_LEN or not re.fullmatch(rf"[0-9a-fA-F]{{{_HEX_LEN[alg]}}}", value):
            raise BlobError("InvalidRequest", f"expected {alg} {value[:80]!r} is not a hex {alg} digest")
        out[alg] = value.lower()
    return out


class BlobService:
    def __init__(
        self, storage: Storage, settings: BlobSettings, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.clock = clock
        self.locks = UploadLocks()
        self.exportable = settings.persist_digest_state and exportable()
        self._reaper: Reaper | None = None
        self.streams = StreamGuard(
            settings.upload_streams, settings.upload_idle_seconds, settings.download_idle_seconds
        )

    @property
    def checkpoint_bytes(self) -> int:
        return self.settings.s3_part_size if self.storage.name == "s3" else self.settings.checkpoint_bytes

    # --- lifecycle --------------------------------------------------------------------------------

    def start_reaper(self) -> None:
        self._reaper = Reaper(self.reap_expired, self.settings.reaper_interval_seconds)
        self._reaper.start()

    def stop(self) -> None:
        self.streams.stop()
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper = None

    # --- uploads ----------------------------------------------------------------------------------

    def start_upload(
        self,
        expected_size: int = 0,
        max_size: int = 0,
        expected: dict[str, str] | None = None,
        ttl_seconds: int = 0,
        label: str = "",
    ) -> UploadState:
        if ttl_seconds < 0:
            raise BlobError("InvalidRequest", "sizes and ttl must not be negative")
        max_size = self._max_size(expected_size, max_size)
        state = UploadState(
            upload_id=new_id(),
            blob_id=new_id(),
            offset=0,
            expected_size=expected_size,
            max_size=max_size,
            expected=checked_digests(expected or {}),
            ttl_seconds=ttl_seconds or self.settings.upload_ttl_seconds,
            expires_at="",
            label=label[:200],
            hash_state=DigestSet.new(self.exportable).export(),
        ).touched(self.clock())
        with storage_errors():
            return self.storage.create_upload(state)

    def _load(self, upload_id: str, allow_committed: bool = False) -> UploadState:
        with storage_errors():
            state = self.storage.load_upload(checked_id(upload_id, "upload id"))
        if state is None or state.expired(self.clock()):
            raise upload_not_found(upload_id)
        if state.committed is not None and not allow_committed:
            raise upload_not_found(upload_id)
        return state

    @contextmanager
    def _writer_lock(self, upload_id: str) -> Iterator[None]:
        checked_id(upload_id, "upload id")
        with self.locks.hold(upload_id, self.settings.writer_wait_seconds) as got:
            if not got:
                current = self._load(upload_id).offset
                raise BlobError(
                    "UploadBusy",
                    f"upload {upload_id} is being written by another stream",
                    {"current_offset": str(current)},
                )
            yield

    def _max_size(self, expected_size: int, max_size: int) -> int:
        """The upload's bound (0: the service's maximum); the sizes checked as StartUpload does."""
        limit = self.settings.max_blob_size
        if expected_size < 0 or max_size < 0:
            raise BlobError("InvalidRequest", "sizes and ttl must not be negative")
        max_size = min(max_size or limit, limit)
        if expected_size > max_size:
            raise BlobError(
                "SizeExceeded",
                f"expected size {expected_size} exceeds the maximum of {max_size} bytes",
                {"max_size": str(max_size)},
            )
        return max_size

    def get_upload(self, upload_id: str) -> UploadState:
        return self._load(upload_id)

    def write(self, upload_id: str, chunks: Iterable[Chunk]) -> UploadState:
        """Apply one stream of chunks; returns the state with the new committed offset."""
        with self._writer_lock(upload_id), storage_errors():
            state = self._load(upload_id)
            return UploadStream(self.storage, state, self.exportable, self.clock).apply(chunks)

    def commit(
        self, upload_id: str, expected: dict[str, str] | None = None, expected_size: int = 0
    ) -> BlobMeta:
        """Verify size and digests, then make the blob visible; a failed verification discards all."""
        wanted = checked_digests(expected or {})
        with self._writer_lock(upload_id), storage_errors():
            state = self._load(upload_id, allow_committed=True)
            if state.committed is not None:
                return state.committed
            digests, state = self._final_digests(state)
            failure = self._verify(
                state.offset, asdict(digests), (state.expected_size, expected_size), (state.expected, wanted)
            )
            if failure is not None:
                self.storage.delete_upload(state)
                raise failure
            meta = BlobMeta(state.blob_id, state.offset, digests, iso(self.clock()), self.storage.name)
            self.storage.commit_upload(state, meta)
            self.storage.save_upload(replace(state, committed=meta, staging={}).touched(self.clock()))
            log.info("committed blob %s (%d bytes) from upload %s", meta.blob_id, meta.size, upload_id)
            return meta

    def put(
        self,
        data: Buffer,
        expected_size: int = 0,
        max_size: int = 0,
        expected: dict[str, str] | None = None,
        label: str = "",
    ) -> BlobMeta:
        """A small blob in one step, checked as StartUpload, WriteChunks and CommitUpload check an
        upload (sizes, expected digests; the same errors), then written straight into place: no
        upload state is saved, and nothing is left behind when a check or the storage fails."""
        max_size = self._max_size(expected_size, max_size)
        wanted = checked_digests(expected or {})
        if len(data) > max_size:
            raise size_exceeded(0, max_size)
        hashed = DigestSet.new(allow_export=False)
        hashed.update(data)
        digests = hashed.digests()
        failure = self._verify(len(data), asdict(digests), (expected_size,), (wanted,))
        if failure is not None:
            raise failure
        meta = BlobMeta(new_id(), len(data), digests, iso(self.clock()), self.storage.name)
        with storage_errors():
            self.storage.put_blob(meta, data, new_id())
        log.debug("stored blob %s (%d bytes) in one call (%s)", meta.blob_id, meta.size, label[:200])
        return meta

    def _final_digests(self, state: UploadState) -> tuple[Digests, UploadState]:
        """The digests of the upload's bytes (and its state, which assembling may change)."""
        saved = DigestSet.restore(state.hash_state) if self.exportable else None
        if saved is not None:
            return saved.digests(), state
        writer = self.storage.open_writer(state)
        try:
            restored = restore_digests(state, writer, self.exportable)
        finally:
            writer.close()
        if restored is not None:
            return restored.digests(), state
        if not isinstance(self.storage, Reassembles):
            raise BlobError("Internal", f"upload {state.upload_id}: digest state lost and bytes unreadable")
        log.info("upload %s: digest state not restorable here, hashing the assembled blob", state.upload_id)
        state = self.storage.assemble(state)
        digests = DigestSet.new(allow_export=False)
        for piece in self.storage.read_assembled(state, self.settings.read_chunk_bytes):
            digests.update(piece)
        return digests.digests(), state

    @staticmethod
    def _verify(
        uploaded: int,
        actual: dict[str, str],
        expected_sizes: tuple[int, ...],
        expected_digests: tuple[dict[str, str], ...],
    ) -> BlobError | None:
        """The first difference between the bytes (``uploaded`` of them, with ``actual`` digests)
        and what was expected of them (a size of 0 and a missing digest expect nothing)."""
        for size in expected_sizes:
            if size and size != uploaded:
                return BlobError(
                    "SizeMismatch",
                    f"uploaded {uploaded} bytes, expected {size}",
                    {"expected": str(size), "actual": str(uploaded)},
                )
        for source in expected_digests:
            for alg in ALGORITHMS:
                if alg in source and source[alg] != actual[alg]:
                    return BlobError(
                        "DigestMismatch",
                        f"{alg} of the uploaded bytes is {actual[alg]}, expected {source[alg]}",
                        {"digest": alg, "expected": source[alg], "actual": actual[alg]},
                    )
        return None

    def abort(self, upload_id: str) -> None:
        with self._writer_lock(upload_id), storage_errors():
            self.storage.delete_upload(self._load(upload_id))

    def reap_expired(self) -> int:
        """Remove expired uploads (and expired records of committed ones); returns how many."""
        reaped = 0
        now = self.clock()
        with storage_errors():
            for upload_id in list(self.storage.list_uploads()):
                with self.locks.hold(upload_id, 0) as got:
                    if not got:
                        continue  # being written right now
                    state = self.storage.load_upload(upload_id)
                    if state is None:
                        # staging whose state was never saved (a crash or a full disk at start)
                        stale = now - timedelta(seconds=self.settings.upload_ttl_seconds)
                        if self.storage.discard_orphan(upload_id, stale):
                            reaped += 1
                    elif state.expired(now):
                        self.storage.delete_upload(state)
                        reaped += 1
        return reaped

    # --- blobs ------------------------------------------------------------------------------------

    def stat(self, blob_id: str) -> BlobMeta:
        with storage_errors():
            meta = self.storage.stat_blob(checked_id(blob_id, "blob id"))
        if meta is None:
            raise blob_not_found(blob_id)
        return meta

    def read(self, blob_id: str, offset: int = 0, length: int = 0) -> tuple[BlobMeta, Iterator[Buffer]]:
        """The blob's info and its bytes ``[offset, offset+length)`` (``length`` 0: to the end); each
        piece is valid until the next is requested (see ``Storage.read_blob``)."""
        meta = self.stat(blob_id)
        if offset < 0 or length < 0 or offset > meta.size or offset + length > meta.size:
            raise BlobError(
                "InvalidRange",
                f"range offset={offset} length={length} is outside the blob ({meta.size} bytes)",
                {"size": str(meta.size)},
            )
        length = length or meta.size - offset
        chunks = self.storage.read_blob(blob_id, offset, length, self.settings.read_chunk_bytes)
        return meta, self._guarded(chunks)

    @staticmethod
    def _guarded(chunks: Iterator[Buffer]) -> Iterator[Buffer]:
        with storage_errors():
            yield from chunks

    def delete(self, blob_id: str) -> bool:
        with storage_errors():
            return self.storage.delete_blob(checked_id(blob_id, "blob id"))
