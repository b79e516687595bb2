"""IMGAPI errors over gRPC: one server interceptor, one client-side mapping.

Server side, :class:`ErrorInterceptor` turns whatever a servicer method raises into the call's
status, for every method of a server (no per-method decorators): an :class:`ImgapiError` becomes a
rich ``google.rpc.Status`` (ErrorInfo with the IMGAPI code and ``http_status``, plus a BadRequest
carrying the ``errors`` array), and each service says how its other exceptions read
(:func:`imgapi_status`). The error's HTTP status also travels as the trailer
:data:`HTTP_STATUS_METADATA`, which the Envoy JSON transcoder's listener copies into the HTTP status.

Client side, :func:`from_rpc_error` rebuilds the domain error from a failed call, so the REST body is
reproduced field by field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from imgapi_common.errors import CODES, CODES_WITH_ERRORS, FieldError, ImgapiError
from imgapi_common.errors import utf8_text as _utf8
from imgapi_common.method_interceptor import MethodWrappingInterceptor, Wrappers

log = logging.getLogger(__name__)

DOMAIN = "imgapi"

#: Trailing metadata carrying the IMGAPI HTTP status of a failed call (transcoded JSON answers
#: take their HTTP status from it).
HTTP_STATUS_METADATA = "imgapi-http-status"

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
                    field=_utf8(e.field), reason=e.code, description=_utf8(e.message or "")
                )
                for e in errors
            ]
        )
        b = any_pb2.Any()
        b.Pack(bad)
        packed.append(b)
    return status_pb2.Status(code=getattr(code_pb2, spec.grpc_code), message=_utf8(message), details=packed)


def _trailer_size(st: status_pb2.Status) -> int:
    return 3 * len(st.message.encode("utf-8")) + (int(st.ByteSize()) * 4) // 3 + 64


def to_rpc_status(err: ImgapiError, domain: str = DOMAIN) -> status_pb2.Status:
    """Pack a domain error into a ``google.rpc.Status`` with ErrorInfo (+ BadRequest).

    The message travels once, as ``Status.message``; texts that echo client input are made valid
    UTF-8. An error echoing huge client input is fitted into the trailer budget: long texts are
    cut, then trailing ``errors`` entries dropped; the code never changes.
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


def abort_with_status(context: grpc.ServicerContext, st: status_pb2.Status, http_status: int = 0) -> None:
    """Terminate an RPC with the rich status ``st`` (raises), with its HTTP status as a trailer."""
    status: Any = rpc_status.to_status(st)  # a namedtuple
    if http_status:
        status = status._replace(
            trailing_metadata=(*status.trailing_metadata, (HTTP_STATUS_METADATA, str(http_status)))
        )
    context.abort_with_status(status)


def abort_with(context: grpc.ServicerContext, err: ImgapiError, domain: str = DOMAIN) -> None:
    """Terminate an RPC with the rich status of ``err`` (raises)."""
    abort_with_status(context, to_rpc_status(err, domain), err.http_status)


# --- the one server-side mapping -------------------------------------------------------------------

#: What a service says about an exception that is not an ImgapiError: the error to answer with,
#: or None for "unexpected" (logged, answered as InternalError). Gets the method name too.
Translator = Callable[[Exception, str], ImgapiError | None]
#: An exception raised by method ``name`` as the status to answer with, and its HTTP status.
StatusOf = Callable[[Exception, str], tuple[status_pb2.Status, int]]


def imgapi_status(translate: Translator | None = None) -> StatusOf:
    """The :data:`StatusOf` of a service whose errors are IMGAPI errors."""

    def status_of(exc: Exception, method: str) -> tuple[status_pb2.Status, int]:
        err = exc if isinstance(exc, ImgapiError) else None
        if err is None and translate is not None:
            err = translate(exc, method)
        if err is None:
            log.error("unexpected failure in %s", method, exc_info=exc)
            err = ImgapiError("InternalError", "internal error")
        return to_rpc_status(err), err.http_status

    return status_of


class ErrorInterceptor(MethodWrappingInterceptor):
    """Answers every failing call of a server with the status ``status_of`` gives its exception.

    A call that already ended (``context.abort`` ran, or the client went away) keeps its status.
    """

    def __init__(self, status_of: StatusOf) -> None:
        super().__init__()
        self.status_of = status_of

    def _fail(self, exc: Exception, method: str, context: grpc.ServicerContext) -> None:
        ended = context.code() not in (None, grpc.StatusCode.OK)  # type: ignore[attr-defined]
        if ended:
            raise exc
        st, http_status = self.status_of(exc, method)
        abort_with_status(context, st, http_status)

    def wrappers(self, full_method: str) -> Wrappers:
        method = full_method.rpartition("/")[2]

        def wrap_unary(fn: Callable[..., Any]) -> Callable[..., Any]:
            def inner(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return fn(request, context)
                except Exception as e:
                    self._fail(e, method, context)
                    raise

            return inner

        def wrap_stream_out(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
            def inner(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    yield from fn(request, context)
                except Exception as e:
                    self._fail(e, method, context)
                    raise

            return inner

        return wrap_unary, wrap_stream_out


# --- the one client-side mapping -------------------------------------------------------------------


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
