"""IMGAPI errors, modelled once.

An :class:`ImgapiError` is a domain error: an IMGAPI error ``code``, its message and, for
``ValidationFailed`` / ``InvalidParameter``, the ``errors`` array. The table :data:`CODES` gives each
code exactly one HTTP status and one gRPC status code (by its canonical name, so that this module
needs no gRPC: the domain raises these errors). :mod:`imgapi_common.grpc_errors` packs them into a
rich ``google.rpc.Status`` on the server side and rebuilds them from a failed call on the client side.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DOMAIN = "imgapi"


@dataclass(frozen=True)
class CodeSpec:
    http_status: int
    #: The canonical gRPC status code name (``google.rpc.Code``), e.g. ``"INVALID_ARGUMENT"``.
    grpc_code: str


#: IMGAPI error code -> (HTTP status, gRPC status).
CODES: dict[str, CodeSpec] = {
    # IMGAPI's own error codes
    "ValidationFailed": CodeSpec(422, "INVALID_ARGUMENT"),
    "InvalidParameter": CodeSpec(422, "INVALID_ARGUMENT"),
    "ImageFilesImmutable": CodeSpec(422, "FAILED_PRECONDITION"),
    "ImageAlreadyActivated": CodeSpec(422, "FAILED_PRECONDITION"),
    "NoActivationNoFile": CodeSpec(422, "FAILED_PRECONDITION"),
    "OperatorOnly": CodeSpec(403, "PERMISSION_DENIED"),
    "ImageUuidAlreadyExists": CodeSpec(409, "ALREADY_EXISTS"),
    "Upload": CodeSpec(400, "INVALID_ARGUMENT"),
    "Download": CodeSpec(400, "INVALID_ARGUMENT"),
    "StorageIsDown": CodeSpec(503, "UNAVAILABLE"),
    "StorageUnsupported": CodeSpec(503, "UNIMPLEMENTED"),
    "RemoteSourceError": CodeSpec(503, "UNAVAILABLE"),
    "OwnerDoesNotExist": CodeSpec(422, "FAILED_PRECONDITION"),
    "AccountDoesNotExist": CodeSpec(422, "FAILED_PRECONDITION"),
    "NotImageOwner": CodeSpec(422, "PERMISSION_DENIED"),
    "ImageNotShared": CodeSpec(422, "PERMISSION_DENIED"),
    "NotMantaPathOwner": CodeSpec(422, "PERMISSION_DENIED"),
    "OriginDoesNotExist": CodeSpec(422, "FAILED_PRECONDITION"),
    "OriginIsNotActive": CodeSpec(422, "FAILED_PRECONDITION"),
    "InsufficientServerVersion": CodeSpec(422, "FAILED_PRECONDITION"),
    "ImageHasDependentImages": CodeSpec(422, "FAILED_PRECONDITION"),
    "NotAvailable": CodeSpec(501, "UNIMPLEMENTED"),
    "NotImplemented": CodeSpec(400, "UNIMPLEMENTED"),
    "ImageFileTooBig": CodeSpec(400, "INVALID_ARGUMENT"),
    # framework-level errors (the REST server's)
    "ResourceNotFound": CodeSpec(404, "NOT_FOUND"),
    "MethodNotAllowedError": CodeSpec(405, "UNIMPLEMENTED"),
    "InvalidVersion": CodeSpec(400, "INVALID_ARGUMENT"),
    "InvalidContent": CodeSpec(400, "INVALID_ARGUMENT"),
    "BadDigest": CodeSpec(400, "INVALID_ARGUMENT"),
    "PreconditionFailed": CodeSpec(412, "FAILED_PRECONDITION"),
    "UnauthorizedError": CodeSpec(401, "UNAUTHENTICATED"),
    "BadRequestError": CodeSpec(400, "INVALID_ARGUMENT"),
    "InvalidHeader": CodeSpec(400, "INVALID_ARGUMENT"),
    "ServiceUnavailableError": CodeSpec(503, "UNAVAILABLE"),
    "InternalError": CodeSpec(500, "INTERNAL"),
    # additions: a request body that stalls, and a storage backend out of space (ENOSPC)
    "RequestTimeoutError": CodeSpec(408, "DEADLINE_EXCEEDED"),
    "InsufficientStorage": CodeSpec(507, "RESOURCE_EXHAUSTED"),
    "InvalidArgument": CodeSpec(409, "INVALID_ARGUMENT"),
    "MissingParameter": CodeSpec(409, "INVALID_ARGUMENT"),
}

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_text(text: str) -> str:
    """Text as UTF-8 can carry it: a lone surrogate (from a JSON body that held ``\\ud800``)
    becomes U+FFFD, which is what IMGAPI's own output carries for it too. Error texts echo client
    input; protobuf strings and the JSON rendering both need valid UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


#: Codes whose REST body carries an ``errors`` array.
CODES_WITH_ERRORS = frozenset({"ValidationFailed", "InvalidParameter"})


@dataclass(frozen=True)
class FieldError:
    """One entry of the ``errors`` array: ``{"field", "code"[, "message"]}``."""

    field: str
    code: str
    message: str | None = None

    def as_json(self) -> dict[str, str]:
        out = {"field": utf8_text(self.field), "code": self.code}
        if self.message is not None:
            out["message"] = utf8_text(self.message)
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
    def grpc_code(self) -> str:
        """The canonical name of the gRPC status code (e.g. ``"NOT_FOUND"``)."""
        return CODES[self.code].grpc_code

    def body(self) -> dict[str, Any]:
        """The REST error body: ``code``, ``message`` and, for the two validation codes, ``errors``."""
        out: dict[str, Any] = {"code": self.code, "message": utf8_text(self.message)}
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
