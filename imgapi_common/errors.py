"""IMGAPI errors, modelled once.

An :class:`ImgapiError` is a domain error: an IMGAPI error ``code`` (errors.md), its message and, for
``ValidationFailed`` / ``InvalidParameter``, the ``errors`` array. The table :data:`CODES` gives each
code exactly one HTTP status and one gRPC status code. Services raise these errors; the gRPC layer
packs them into a rich ``google.rpc.Status`` (:func:`to_rpc_status`) and the gateway unpacks them
(:func:`from_rpc_error`) to reproduce the REST body field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "imgapi"


@dataclass(frozen=True)
class CodeSpec:
    http_status: int
    grpc_code: grpc.StatusCode


_G = grpc.StatusCode

#: IMGAPI error code -> (HTTP status, gRPC status). errors.md §2 and §3.
CODES: dict[str, CodeSpec] = {
    # errors.md §2: IMGAPI error codes
    "ValidationFailed": CodeSpec(422, _G.INVALID_ARGUMENT),
    "InvalidParameter": CodeSpec(422, _G.INVALID_ARGUMENT),
    "ImageFilesImmutable": CodeSpec(422, _G.FAILED_PRECONDITION),
    "ImageAlreadyActivated": CodeSpec(422, _G.FAILED_PRECONDITION),
    "NoActivationNoFile": CodeSpec(422, _G.FAILED_PRECONDITION),
    "OperatorOnly": CodeSpec(403, _G.PERMISSION_DENIED),
    "ImageUuidAlreadyExists": CodeSpec(409, _G.ALREADY_EXISTS),
    "Upload": CodeSpec(400, _G.INVALID_ARGUMENT),
    "Download": CodeSpec(400, _G.INVALID_ARGUMENT),
    "StorageIsDown": CodeSpec(503, _G.UNAVAILABLE),
    "StorageUnsupported": CodeSpec(503, _G.UNIMPLEMENTED),
    "RemoteSourceError": CodeSpec(503, _G.UNAVAILABLE),
    "OwnerDoesNotExist": CodeSpec(422, _G.FAILED_PRECONDITION),
    "AccountDoesNotExist": CodeSpec(422, _G.FAILED_PRECONDITION),
    "NotImageOwner": CodeSpec(422, _G.PERMISSION_DENIED),
    "ImageNotShared": CodeSpec(422, _G.PERMISSION_DENIED),
    "NotMantaPathOwner": CodeSpec(422, _G.PERMISSION_DENIED),
    "OriginDoesNotExist": CodeSpec(422, _G.FAILED_PRECONDITION),
    "OriginIsNotActive": CodeSpec(422, _G.FAILED_PRECONDITION),
    "InsufficientServerVersion": CodeSpec(422, _G.FAILED_PRECONDITION),
    "ImageHasDependentImages": CodeSpec(422, _G.FAILED_PRECONDITION),
    "NotAvailable": CodeSpec(501, _G.UNIMPLEMENTED),
    "NotImplemented": CodeSpec(400, _G.UNIMPLEMENTED),
    "ImageFileTooBig": CodeSpec(400, _G.INVALID_ARGUMENT),
    # errors.md §3: framework-level errors
    "ResourceNotFound": CodeSpec(404, _G.NOT_FOUND),
    "MethodNotAllowedError": CodeSpec(405, _G.UNIMPLEMENTED),
    "InvalidVersion": CodeSpec(400, _G.INVALID_ARGUMENT),
    "InvalidContent": CodeSpec(400, _G.INVALID_ARGUMENT),
    "BadDigest": CodeSpec(400, _G.INVALID_ARGUMENT),
    "PreconditionFailed": CodeSpec(412, _G.FAILED_PRECONDITION),
    "UnauthorizedError": CodeSpec(401, _G.UNAUTHENTICATED),
    "BadRequestError": CodeSpec(400, _G.INVALID_ARGUMENT),
    "InvalidHeader": CodeSpec(400, _G.INVALID_ARGUMENT),
    "ServiceUnavailableError": CodeSpec(503, _G.UNAVAILABLE),
    "InternalError": CodeSpec(500, _G.INTERNAL),
    # additions: a request body that stalls, and a storage backend out of space (ENOSPC)
    "RequestTimeoutError": CodeSpec(408, _G.DEADLINE_EXCEEDED),
    "InsufficientStorage": CodeSpec(507, _G.RESOURCE_EXHAUSTED),
    "InvalidArgument": CodeSpec(409, _G.INVALID_ARGUMENT),
    "MissingParameter": CodeSpec(409, _G.INVALID_ARGUMENT),
}

#: Codes whose REST body carries an ``errors`` array.
CODES_WITH_ERRORS = frozenset({"ValidationFailed", "InvalidParameter"})


@dataclass(frozen=True)
class FieldError:
    """One entry of the ``errors`` array: ``{"field", "code"[, "message"]}``."""

    field: str
    code: str
    message: str | None = None

    def as_json(self) -> dict[str, str]:
        out = {"field": self.field, "code": self.code}
        if self.message is not None:
            out["message"] = self.message
        return out


@dataclass
class ImgapiError(Exception):
    """A domain error with an IMGAPI code (see :data:`CODES`)."""

    code: str
    message: str
    errors: Sequence[FieldError] = field(default_factory=tuple)
    #: Extra machine-readable facts (e.g. ``current_offset`` of a blob upload).
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown IMGAPI error code {self.code!r}")
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return CODES[self.code].http_status

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return CODES[self.code].grpc_code

    def body(self) -> dict[str, Any]:
        """The REST error body (errors.md §1)."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.code in CODES_WITH_ERRORS:
            out["errors"] = [e.as_json() for e in self.errors]
        return out


# --- convenience constructors for the most common errors ------------------------------------------


def validation_failed(message: str, errors: Sequence[FieldError] = ()) -> ImgapiError:
    return ImgapiError("ValidationFailed", message, tuple(errors))


def invalid_parameter(message: str, errors: Sequence[FieldError] = ()) -> ImgapiError:
    return ImgapiError("InvalidParameter", message, tuple(errors))


def not_found(message: str) -> ImgapiError:
    return ImgapiError("ResourceNotFound", message)


def internal(message: str) -> ImgapiError:
    return ImgapiError("InternalError", message)


# --- gRPC rich status -----------------------------------------------------------------------------


#: Budget for an error's trailers: grpc-message (percent-encoded: up to 3 bytes per UTF-8 byte)
#: plus the base64 rich status. gRPC clients refuse metadata above 8 KiB by default, which would
#: turn a clean 422 into a transport error; error texts quote client input, so they are fitted.
MAX_ERROR_METADATA_BYTES = 6000


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _pack(
    code: str, message: str, errors: Sequence[FieldError], meta: dict[str, str], domain: str
) -> status_pb2.Status:
    spec = CODES[code]
    info = error_details_pb2.ErrorInfo(
        reason=code, domain=domain, metadata={"http_status": str(spec.http_status), **meta}
    )
    a = any_pb2.Any()
    a.Pack(info)
    packed = [a]
    if code in CODES_WITH_ERRORS:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=e.field, reason=e.code, description=e.message or ""
                )
                for e in errors
            ]
        )
        b = any_pb2.Any()
        b.Pack(bad)
        packed.append(b)
    return status_pb2.Status(code=getattr(code_pb2, spec.grpc_code.name), message=message, details=packed)


def _trailer_size(st: status_pb2.Status) -> int:
    return 3 * len(st.message.encode("utf-8")) + (int(st.ByteSize()) * 4) // 3 + 64


def to_rpc_status(err: ImgapiError, domain: str = DOMAIN) -> status_pb2.Status:
    """Pack a domain error into a ``google.rpc.Status`` with ErrorInfo (+ BadRequest).

    The message travels once, as ``Status.message``. An error echoing huge client input is
    fitted into the trailer budget: long texts are cut, then trailing ``errors`` entries dropped;
    the code never changes.
    """
    st = _pack(err.code, err.message, err.errors, dict(err.metadata), domain)
    if _trailer_size(st) <= MAX_ERROR_METADATA_BYTES:
        return st
    errors = [
        FieldError(_shorten(e.field, 100), e.code, None if e.message is None else _shorten(e.message, 100))
        for e in err.errors
    ]
    message = _shorten(err.message, 300)
    st = _pack(err.code, message, errors, dict(err.metadata), domain)
    while errors and _trailer_size(st) > MAX_ERROR_METADATA_BYTES:
        errors = errors[: len(errors) // 2]
        st = _pack(err.code, message, errors, dict(err.metadata), domain)
    return st


def abort_with(context: grpc.ServicerContext, err: ImgapiError, domain: str = DOMAIN) -> None:
    """Terminate an RPC with the rich status of ``err`` (raises)."""
    context.abort_with_status(rpc_status.to_status(to_rpc_status(err, domain)))


def from_rpc_error(exc: grpc.RpcError) -> ImgapiError:
    """Rebuild the domain error from a failed call. Non-IMGAPI failures become 500/503 errors."""
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except ValueError:  # the transport status disagrees with the packed one: trust the transport
        status = None
    if status is not None:
        info: error_details_pb2.ErrorInfo | None = None
        bad: error_details_pb2.BadRequest | None = None
        for d in status.details:
            if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                d.Unpack(info)
            elif d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                d.Unpack(bad)
        if info is not None and info.reason in CODES:
            errors: list[FieldError] = []
            if bad is not None:
                for v in bad.field_violations:
                    # An empty description stands for "no message" (IMGAPI never sends empty ones).
                    errors.append(FieldError(v.field, v.reason, v.description or None))
            meta = {k: v for k, v in info.metadata.items() if k != "http_status"}
            return ImgapiError(info.reason, status.message, errors, meta)
    code = exc.code() if hasattr(exc, "code") else None
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ImgapiError("ServiceUnavailableError", "service unavailable")
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return ImgapiError("InternalError", str(details or "internal error"))


def error_reason(exc: grpc.RpcError) -> tuple[str | None, dict[str, str]]:
    """The ErrorInfo reason and metadata of a failed call (any domain), e.g. blob-service errors."""
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except ValueError:
        return None, {}
    if status is None:
        return None, {}
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return info.reason, dict(info.metadata)
    return None, {}
