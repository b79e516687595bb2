"""The storage interface the service asks for: upload staging and committed blobs.

The service owns the protocol logic (offsets, digests, verification, expiry); a backend only
stores bytes and small JSON records, keyed by ids the service has validated.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from blob_service.domain.digests import Buffer
from blob_service.domain.model import BlobMeta, UploadState


class StorageUnavailable(Exception):
    """The backend cannot be reached (maps to StorageIsDown)."""


class StorageBusy(Exception):
    """Another process holds the upload (maps to UploadBusy)."""


class StagedConflict(Exception):
    """The staged bytes are not what the upload state says (e.g. concurrent writers on replicas)."""


class UploadWriter(Protocol):
    """Appends to one upload from its committed offset; bytes become durable at ``checkpoint``."""

    @property
    def offset(self) -> int:
        """End of the bytes written so far (durable or not)."""
        ...

    def room(self) -> int:
        """Bytes that may be written before a checkpoint is due (a part boundary on S3)."""
        ...

    def write(self, data: Buffer) -> None: ...

    def read_back(self, offset: int, length: int) -> bytes | None:
        """Stored bytes below ``offset``, or ``None`` when the backend cannot read them back."""
        ...

    def checkpoint(self) -> dict[str, Any]:
        """Make everything written durable; returns the new ``staging`` record for the state."""
        ...

    def saved(self) -> None:
        """Called once the state returned by ``checkpoint`` is saved (drop superseded objects)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SyncsInBackground(Protocol):
    """A writer whose checkpoints can complete on another thread while the stream keeps writing.

    ``mark`` starts a checkpoint at the current offset (``room`` counts from there); ``sync``, run
    on another thread concurrently with ``write``, makes at least the bytes up to the last mark
    durable. The stream saves the state of a checkpoint only after its ``sync`` returned.
    """

    def mark(self) -> int: ...

    def sync(self) -> None: ...


@runtime_checkable
class Reassembles(Protocol):
    """A backend that cannot read staged bytes back before the commit (S3 multipart parts).

    When an upload's digest state is lost (saved by another OpenSSL), the commit assembles the
    blob first (``assemble``: still invisible, ``commit_upload`` publishes it, ``delete_upload``
    removes it) and hashes it by reading it (``read_assembled``)."""

    def assemble(self, state: UploadState) -> UploadState: ...

    def read_assembled(self, state: UploadState, chunk: int) -> Iterator[Buffer]: ...


class Storage(Protocol):
    #: Backend name reported as ``stor``.
    name: str

    def check(self) -> None:
        """Raise :class:`StorageUnavailable` if the backend cannot be used."""
        ...

    # --- upload sessions --------------------------------------------------------------------

    def create_upload(self, state: UploadState) -> UploadState:
        """Prepare staging for a new upload and save its state; returns the saved state. On
        failure nothing is left behind."""
        ...

    def load_upload(self, upload_id: str) -> UploadState | None: ...

    def save_upload(self, state: UploadState) -> None: ...

    def open_writer(self, state: UploadState) -> UploadWriter: ...

    def commit_upload(self, state: UploadState, meta: BlobMeta) -> None:
        """Atomically make the staged bytes the blob ``meta`` describes; staging is released."""
        ...

    def delete_upload(self, state: UploadState) -> None:
        """Forget the upload: staged bytes and state."""
        ...

    def list_uploads(self) -> Iterator[str]: ...

    def discard_orphan(self, upload_id: str, before: datetime) -> bool:
        """Remove staging of ``upload_id`` that has no saved state and did not change since
        ``before``; returns whether something was removed."""
        ...

    # --- committed blobs --------------------------------------------------------------------

    def put_blob(self, meta: BlobMeta, data: Buffer, staging_id: str) -> None:
        """Store a small verified blob in one step: ``data`` becomes the blob ``meta`` describes,
        atomically. Staging, if the backend needs any, is named ``staging_id`` (an upload id, so
        a crash in the middle leaves what the orphan sweep of uploads removes)."""
        ...

    def stat_blob(self, blob_id: str) -> BlobMeta | None: ...

    def read_blob(self, blob_id: str, offset: int, length: int, chunk: int) -> Iterator[Buffer]:
        """``length`` bytes from ``offset`` (the caller checked the range) in ``chunk``-sized pieces.

        A piece may be a view of a buffer the backend reuses: it is valid until the next piece is
        requested, so a consumer copies or sends it first."""
        ...

    def delete_blob(self, blob_id: str) -> bool: ...
