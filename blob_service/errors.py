"""Blob-service errors: a reason (blob.proto), a message and machine-readable metadata.

These are not IMGAPI REST codes (the gateway maps them), so they are packed into a
``google.rpc.Status`` with an ErrorInfo of domain ``imgapi.blob`` here rather than through
:mod:`imgapi_common.errors`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

log = logging.getLogger(__name__)

DOMAIN = "imgapi.blob"

_G = grpc.StatusCode

#: reason -> gRPC status code (blob.proto). The last two only ever arise client-side.
REASONS: dict[str, grpc.StatusCode] = {
    "OffsetMismatch": _G.FAILED_PRECONDITION,
    "ChunkChecksum": _G.DATA_LOSS,
    "SizeExceeded": _G.OUT_OF_RANGE,
    "SizeMismatch": _G.FAILED_PRECONDITION,
    "DigestMismatch": _G.FAILED_PRECONDITION,
    "UploadNotFound": _G.NOT_FOUND,
    "BlobNotFound": _G.NOT_FOUND,
    "InvalidId": _G.INVALID_ARGUMENT,
    "InvalidRange": _G.OUT_OF_RANGE,
    "StorageIsDown": _G.UNAVAILABLE,
    "UploadBusy": _G.ABORTED,
    "InvalidRequest": _G.INVALID_ARGUMENT,
    "TooManyUploads": _G.RESOURCE_EXHAUSTED,
    "InsufficientStorage": _G.RESOURCE_EXHAUSTED,
    "Internal": _G.INTERNAL,
    "Unavailable": _G.UNAVAILABLE,
}


@dataclass
class BlobError(Exception):
    """A blob-service failure with a reason from :data:`REASONS`."""

    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown blob error reason {self.reason!r}")
        super().__init__(self.message)

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return REASONS[self.reason]

    def to_rpc_status(self) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)
        detail = any_pb2.Any()
        detail.Pack(info)
        return status_pb2.Status(
            code=getattr(code_pb2, self.grpc_code.name), message=self.message, details=[detail]
        )

    @classmethod
    def from_rpc_error(cls, exc: grpc.RpcError) -> BlobError:
        """Rebuild the error from a failed call; transport failures become Unavailable/Internal."""
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
        if status is not None:
            for d in status.details:
                if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    d.Unpack(info)
                    if info.domain == DOMAIN and info.reason in REASONS:
                        return cls(info.reason, status.message, dict(info.metadata))
        code = exc.code() if isinstance(exc, grpc.Call) else None
        details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(exc)
        if code in (_G.UNAVAILABLE, _G.DEADLINE_EXCEEDED, _G.CANCELLED):
            return cls("Unavailable", f"blob service unavailable: {details}", {"grpc_code": code.name})
        return cls("Internal", str(details))


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
