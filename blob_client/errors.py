"""Blob-service errors: a reason (blob.proto), a message and machine-readable metadata.

These are not IMGAPI REST codes (the gateway maps them), so they travel packed into a
``google.rpc.Status`` with an ErrorInfo of domain ``imgapi.blob``. Both sides share this module:
the blob service packs them (:meth:`BlobError.to_rpc_status`), the clients rebuild them
(:meth:`BlobError.from_rpc_error`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

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
    """A blob-service failure with a reason from :data:`REASONS`.

    ``rpc_error`` is the failed call it was rebuilt from (None for errors raised on this side), so
    a caller with its own error model (the gateway) can still read the transport status.
    ``from_transport`` is True when that call carried no blob-service error: the reason
    (Unavailable or Internal) was read from its transport status alone.
    """

    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)
    rpc_error: grpc.RpcError | None = field(default=None, compare=False, repr=False, kw_only=True)
    from_transport: bool = field(default=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown blob error reason {self.reason!r}")
        super().__init__(self.message)

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return REASONS[self.reason]

    @property
    def transport_code(self) -> grpc.StatusCode | None:
        """The status code of the failed call this error came from (None: raised on this side)."""
        return _code(self.rpc_error) if self.rpc_error is not None else None

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
        try:
            status = rpc_status.from_call(exc)  # type: ignore[arg-type]
        except ValueError:  # the transport status disagrees with the packed one: trust the transport
            status = None
        if status is not None:
            for d in status.details:
                if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    d.Unpack(info)
                    if info.domain == DOMAIN and info.reason in REASONS:
                        return cls(info.reason, status.message, dict(info.metadata), rpc_error=exc)
        code = _code(exc)
        details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
        if code in (_G.UNAVAILABLE, _G.DEADLINE_EXCEEDED, _G.CANCELLED):
            return cls(
                "Unavailable",
                f"blob service unavailable: {details}",
                {"grpc_code": code.name},
                rpc_error=exc,
                from_transport=True,
            )
        return cls("Internal", str(details), rpc_error=exc, from_transport=True)


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    """The status code of a failed call, sync (a ``grpc.Call``) or asyncio (``AioRpcError``)."""
    code = exc.code() if hasattr(exc, "code") else None
    return code if isinstance(code, grpc.StatusCode) else None
