"""The one error interceptor every service's server runs (imgapi_common/grpc_errors.py), on a real
server built by build_server: what a method raises becomes the call's rich status in every call
shape, a service's own exceptions read through its translator, an unexpected one is an
InternalError, a call that already ended keeps its status, and the IMGAPI HTTP status travels as
a trailer (the transcoded JSON surface takes its HTTP status from it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from imgapi_common.errors import FieldError, ImgapiError, validation_failed
from imgapi_common.grpc_errors import HTTP_STATUS_METADATA, from_rpc_error, imgapi_status
from imgapi_common.grpc_server import build_server


def _raise(request: bytes) -> None:
    kind = request.decode()
    if kind == "imgapi":
        raise validation_failed("bad manifest", [FieldError("os", "Invalid", "no such os")])
    if kind == "lookup":
        raise KeyError("translated by the service")
    if kind == "abort":
        raise AssertionError("unreachable")
    raise RuntimeError("boom")


def _uu(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request == b"abort":
        context.abort(grpc.StatusCode.ABORTED, "ended by the method itself")
    _raise(request)
    return b"ok"


def _us(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield b"first"
    _raise(request)


def _su(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    _raise(b"".join(requests))
    return b"ok"


def _ss(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    for r in requests:
        yield r
        _raise(r)


HANDLERS = grpc.method_handlers_generic_handler(
    "t.Fail",
    {
        "UU": grpc.unary_unary_rpc_method_handler(_uu),
        "US": grpc.unary_stream_rpc_method_handler(_us),
        "SU": grpc.stream_unary_rpc_method_handler(_su),
        "SS": grpc.stream_stream_rpc_method_handler(_ss),
    },
)


def _register(_servicer: Any, server: grpc.Server) -> None:
    server.add_generic_rpc_handlers((HANDLERS,))


def _translate(exc: Exception, method: str) -> ImgapiError | None:
    if isinstance(exc, KeyError):
        return ImgapiError("ResourceNotFound", f"{method}: not found")
    return None


@pytest.fixture(scope="module")
def ch() -> Iterator[grpc.Channel]:
    server, port, _health = build_server(
        [(_register, None)], [], "127.0.0.1:0", max_workers=4, status_of=imgapi_status(_translate)
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        server.stop(0).wait()


def _call(ch: grpc.Channel, shape: str, payload: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as ei:
        if shape == "UU":
            ch.unary_unary(  # type: ignore[call-arg]
                "/t.Fail/UU"
            )(payload, timeout=10)
        elif shape == "US":
            list(
                ch.unary_stream(  # type: ignore[call-arg]
                    "/t.Fail/US"
                )(payload, timeout=10)
            )
        elif shape == "SU":
            ch.stream_unary(  # type: ignore[call-arg]
                "/t.Fail/SU"
            )(iter([payload]), timeout=10)
        else:
            list(
                ch.stream_stream(  # type: ignore[call-arg]
                    "/t.Fail/SS"
                )(iter([payload]), timeout=10)
            )
    return ei.value


SHAPES = ["UU", "US", "SU", "SS"]


def _http_status(exc: grpc.RpcError) -> str:
    trailers: Any = exc.trailing_metadata()  # type: ignore[attr-defined]
    return str(dict(trailers)[HTTP_STATUS_METADATA])


@pytest.mark.parametrize("shape", SHAPES)
def test_an_imgapi_error_arrives_field_by_field_with_its_http_status(ch: grpc.Channel, shape: str) -> None:
    exc = _call(ch, shape, b"imgapi")
    err = from_rpc_error(exc)
    assert err.body() == {
        "code": "ValidationFailed",
        "message": "bad manifest",
        "errors": [{"field": "os", "code": "Invalid", "message": "no such os"}],
    }
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert _http_status(exc) == "422"


@pytest.mark.parametrize("shape", SHAPES)
def test_a_service_exception_reads_through_its_translator(ch: grpc.Channel, shape: str) -> None:
    err = from_rpc_error(_call(ch, shape, b"lookup"))
    assert (err.code, err.message) == ("ResourceNotFound", f"{shape}: not found")


@pytest.mark.parametrize("shape", SHAPES)
def test_an_unexpected_exception_is_an_internal_error(ch: grpc.Channel, shape: str) -> None:
    exc = _call(ch, shape, b"other")
    assert from_rpc_error(exc).body() == {"code": "InternalError", "message": "internal error"}
    assert _http_status(exc) == "500"


def test_a_call_the_method_ended_keeps_its_status(ch: grpc.Channel) -> None:
    exc = _call(ch, "UU", b"abort")
    assert exc.code() == grpc.StatusCode.ABORTED  # type: ignore[attr-defined]
    assert exc.details() == "ended by the method itself"  # type: ignore[attr-defined]
