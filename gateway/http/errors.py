"""Rendering errors: every failure becomes IMGAPI's JSON error body (``code``, ``message``, and
``errors`` for field errors), with the HTTP status of its code."""

from __future__ import annotations

import logging

import grpc
from starlette.responses import Response

from gateway.http.responses import json_response
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import from_rpc_error

log = logging.getLogger("gateway")


def error_response(err: ImgapiError, headers: dict[str, str] | None = None) -> Response:
    return json_response(err.body(), status=err.http_status, headers=headers)


def to_imgapi_error(exc: BaseException) -> ImgapiError:
    """Any exception raised while handling a request, as an IMGAPI error."""
    if isinstance(exc, ImgapiError):
        return exc
    if isinstance(exc, grpc.RpcError):
        return from_rpc_error(exc)
    log.exception("unexpected error", exc_info=exc)
    return ImgapiError("InternalError", "internal error")


class MethodNotAllowed(ImgapiError):
    """405 with the ``Allow`` header of the matched path."""

    def __init__(self, method: str, allow: list[str]) -> None:
        super().__init__("MethodNotAllowedError", f"{method} is not allowed")
        self.allow = allow


def render(exc: BaseException) -> Response:
    err = to_imgapi_error(exc)
    headers = {"Allow": ", ".join(err.allow)} if isinstance(err, MethodNotAllowed) else None
    return error_response(err, headers)
