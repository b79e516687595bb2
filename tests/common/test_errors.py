"""The error model survives the gRPC hop whatever the client sent."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter
from imgapi_common.grpc_errors import abort_with, from_rpc_error


def _roundtrip(err: ImgapiError) -> ImgapiError:
    def handler(request: bytes, context: grpc.ServicerContext) -> bytes:
        abort_with(context, err)
        return b""

    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("t.T", {"M": grpc.unary_unary_rpc_method_handler(handler)})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            with pytest.raises(grpc.RpcError) as ei:
                ch.unary_unary("/t.T/M", None, None)(b"", timeout=10)
            return from_rpc_error(ei.value)
    finally:
        server.stop(0)


def test_rich_error_round_trips_field_by_field() -> None:
    err = ImgapiError(
        "ValidationFailed",
        "invalid image data: name, os",
        [FieldError("name", "MissingParameter"), FieldError("os", "Invalid", 'invalid image os, "beos"')],
    )
    back = _roundtrip(err)
    assert back.code == "ValidationFailed"
    assert back.http_status == 422
    assert back.body() == err.body()


def test_huge_client_input_still_yields_a_clean_error() -> None:
    keys = [f"k{i}-" + "x" * 900 for i in range(200)]
    err = invalid_parameter(
        "invalid extra parameters: " + ", ".join(f'"{k}"' for k in keys),
        [FieldError(k, "Invalid") for k in keys],
    )
    back = _roundtrip(err)
    assert back.code == "InvalidParameter"
    assert back.message.startswith("invalid extra parameters: ") and len(back.message) <= 303
    assert 0 < len(back.errors) < 200
    assert back.errors[0].field.startswith("k0-")


@pytest.mark.parametrize("code", ["ResourceNotFound", "UnauthorizedError", "InternalError", "Upload"])
def test_each_code_maps_to_one_http_status(code: str) -> None:
    back = _roundtrip(ImgapiError(code, "boom"))
    assert (back.code, back.http_status, back.message) == (code, ImgapiError(code, "x").http_status, "boom")
    assert "errors" not in back.body()
