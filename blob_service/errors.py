"""Raising blob-service errors from the servicer; the error type itself is shared with the clients
(:mod:`blob_client.errors`)."""

from __future__ import annotations

import logging

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from blob_client.errors import DOMAIN, REASONS, BlobError

__all__ = ["DOMAIN", "REASONS", "BlobError", "abort_with", "blob_status"]

log = logging.getLogger(__name__)


def abort_with(context: grpc.ServicerContext, err: BlobError) -> None:
    """Terminate an RPC with the rich status of ``err`` (raises)."""
    context.abort_with_status(rpc_status.to_status(err.to_rpc_status()))


def blob_status(exc: Exception, method: str) -> tuple[status_pb2.Status, int]:
    """The status a blob-service call that raised ``exc`` ends with (the server's error interceptor
    calls this): a BlobError as it is, anything else Internal (and logged)."""
    if isinstance(exc, BlobError):
        return exc.to_rpc_status(), 0
    log.error("%s failed", method, exc_info=exc)
    return BlobError("Internal", f"{exc.__class__.__name__}: {exc}").to_rpc_status(), 0


# --- constructors used by the service -------------------------------------------------------------


def offset_mismatch(current: int, message: str) -> BlobError:
    return BlobError("OffsetMismatch", message, {"current_offset": str(current)})


def upload_not_found(upload_id: str) -> BlobError:
    return BlobError("UploadNotFound", f"upload {upload_id} not found (unknown, finished or expired)")


def blob_not_found(blob_id: str) -> BlobError:
    return BlobError("BlobNotFound", f"blob {blob_id} not found")


def storage_down(message: str) -> BlobError:
    return BlobError("StorageIsDown", message)
