"""The internal-token interceptor and the channel helpers (imgapi_common/internal_auth.py), on a real
gRPC server built like every service's: all four call shapes, sync and asyncio clients, and the
order of interceptors (the observability interceptor caches handlers per method, so an
authenticated first call must never open the method to later callers without the token)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from imgapi_common.grpc_server import build_server
from imgapi_common.internal_auth import aio_channel, channel
from imgapi_common.observability import ObservabilityInterceptor

TOKEN = "interceptor-test-token-0123456789"
SEEN: list[str] = []


def _auth(context: grpc.ServicerContext) -> str:
    return str(dict(context.invocation_metadata()).get("authorization", "-"))


def _uu(request: bytes, context: grpc.ServicerContext) -> bytes:
    SEEN.append("uu")
    return request + b"|" + _auth(context).encode()


def _us(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    SEEN.append("us")
    yield request
    yield _auth(context).encode()


def _su(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    SEEN.append("su")
    return b"".join(requests) + b"|" + _auth(context).encode()


def _ss(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    SEEN.append("ss")
    yield from requests
    yield _auth(context).encode()


HANDLERS = grpc.method_handlers_generic_handler(
    "t.Echo",
    {
        "UU": grpc.unary_unary_rpc_method_handler(_uu),
        "US": grpc.unary_stream_rpc_method_handler(_us),
        "SU": grpc.stream_unary_rpc_method_handler(_su),
        "SS": grpc.stream_stream_rpc_method_handler(_ss),
    },
)


def _register(_servicer: Any, server: grpc.Server) -> None:
    server.add_generic_rpc_handlers((HANDLERS,))


@pytest.fixture()
def target() -> Iterator[str]:
    server, port, _health = build_server(
        [(_register, None)],
        [],
        "127.0.0.1:0",
        max_workers=4,
        interceptors=[ObservabilityInterceptor()],
        internal_token=SecretStr(TOKEN),
    )
    server.start()
    SEEN.clear()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait()


def _calls(ch: grpc.Channel) -> list[Any]:
    return [
        ch.unary_unary("/t.Echo/UU", None, None)(b"a", timeout=10),
        list(ch.unary_stream("/t.Echo/US", None, None)(b"a", timeout=10)),
        ch.stream_unary("/t.Echo/SU", None, None)(iter([b"a", b"b"]), timeout=10),
        list(ch.stream_stream("/t.Echo/SS", None, None)(iter([b"a"]), timeout=10)),
    ]


def test_every_call_shape_carries_the_token(target: str) -> None:
    bearer = f"Bearer {TOKEN}".encode()
    with channel(target, TOKEN) as ch:
        assert _calls(ch) == [b"a|" + bearer, [b"a", bearer], b"ab|" + bearer, [b"a", bearer]]


@pytest.mark.parametrize("token", ["", "another-token-of-the-same-size-0123"])
def test_every_call_shape_is_refused_without_it(target: str, token: str) -> None:
    with channel(target, token) as ch:
        # Authenticated calls first: the cached handlers must not let the next callers in.
        with channel(target, TOKEN) as good:
            _calls(good)
        SEEN.clear()
        for method in ("UU", "US", "SU", "SS"):
            with pytest.raises(grpc.RpcError) as e:
                if method == "UU":
                    ch.unary_unary("/t.Echo/UU", None, None)(b"a", timeout=10)
                elif method == "US":
                    list(ch.unary_stream("/t.Echo/US", None, None)(b"a", timeout=10))
                elif method == "SU":
                    ch.stream_unary("/t.Echo/SU", None, None)(iter([b"a"]), timeout=10)
                else:
                    list(ch.stream_stream("/t.Echo/SS", None, None)(iter([b"a"]), timeout=10))
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, method
        # An unknown method is refused the same way (no hint of what exists).
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/t.Echo/Nope", None, None)(b"a", timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert SEEN == []  # no handler ran
    # ... and refused calls did not close the methods to the token holder either.
    with channel(target, TOKEN) as good:
        assert len(_calls(good)) == 4


def test_asyncio_channel_carries_the_token(target: str) -> None:
    bearer = f"Bearer {TOKEN}".encode()

    async def run(token: str) -> list[Any]:
        async with aio_channel(target, token) as ch:

            async def two() -> Any:
                yield b"a"
                yield b"b"

            return [
                await ch.unary_unary("/t.Echo/UU", None, None)(
                    b"a", timeout=10, metadata=(("x-request-id", "r1"),)
                ),
                [m async for m in ch.unary_stream("/t.Echo/US", None, None)(b"a", timeout=10)],
                await ch.stream_unary("/t.Echo/SU", None, None)(two(), timeout=10),
                [m async for m in ch.stream_stream("/t.Echo/SS", None, None)(two(), timeout=10)],
            ]

    assert asyncio.run(run(TOKEN)) == [b"a|" + bearer, [b"a", bearer], b"ab|" + bearer, [b"a", b"b", bearer]]
    with pytest.raises(grpc.RpcError) as e:
        asyncio.run(run(""))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_public_bind_without_a_token_is_refused() -> None:
    with pytest.raises(RuntimeError, match="IMGAPI_INTERNAL_TOKEN"):
        build_server([(_register, None)], [], "0.0.0.0:0")
