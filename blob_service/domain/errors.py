"""The errors the blob service raises; the error type itself is shared with the clients
(:mod:`blob_client.errors`), the status a failed call ends with is :mod:`blob_service.api.status`."""

from __future__ import annotations

from blob_client.errors import DOMAIN, REASONS, BlobError

__all__ = ["DOMAIN", "REASONS", "BlobError"]


def offset_mismatch(current: int, message: str) -> BlobError:
    return BlobError("OffsetMismatch", message, {"current_offset": str(current)})


def size_exceeded(current: int, max_size: int) -> BlobError:
    """Bytes written at offset ``current`` would take the upload past its ``max_size``."""
    return BlobError(
        "SizeExceeded",
        f"upload would exceed its maximum size of {max_size} bytes",
        {"current_offset": str(current), "max_size": str(max_size)},
    )


def upload_not_found(upload_id: str) -> BlobError:
    return BlobError("UploadNotFound", f"upload {upload_id} not found (unknown, finished or expired)")


def blob_not_found(blob_id: str) -> BlobError:
    return BlobError("BlobNotFound", f"blob {blob_id} not found")


def storage_down(message: str) -> BlobError:
    return BlobError("StorageIsDown", message)
