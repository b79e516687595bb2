"""imgapi_common.local_channel: a generated stub on an in-process channel behaves as over a socket.

A small health-check servicer stands in for a service here (its proto has a unary and a streaming
method); tests/catalog/test_local_channel.py compares the catalog itself over both transports.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import from_rpc_error
from imgapi_common.grpc_server import service_interceptors
from imgapi_common.local_channel import LocalChannel, method_handlers
from imgapi_common.observability import REQUEST_ID_METADATA, ObservabilityInterceptor, request_id


class Health(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """Answers by the requested service name: ``ok``, ``missing`` (an IMGAPI error), ``boom`` (a bug),
    ``slow`` (waits for ``release``), ``mutate`` (changes its request); it notes its thread."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.seen_active: list[bool] = []
        self.threads: list[str] = []

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.threads.append(threading.current_thread().name)
        name = request.service
        if name == "missing":
            raise ImgapiError("ResourceNotFound", "image 'missing' does not exist")
        if name == "boom":
            raise RuntimeError("a bug")
        if name == "slow":
            assert self.release.wait(30)
            self.seen_active.append(context.is_active())
        if name == "mutate":
            request.service = "changed"
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def _local(servicer: Health, *, with_interceptors: bool = True, **kw: Any) -> LocalChannel:
    interceptors = service_interceptors([ObservabilityInterceptor()]) if with_interceptors else []
    return LocalChannel(
        method_handlers(health_pb2_grpc.add_HealthServicer_to_server, servicer), interceptors, **kw
    )


def _check(channel: Any, service: str, **kw: Any) -> Any:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), **kw)


@pytest.fixture(params=[False, True], ids=["pool", "caller-thread"])
def on_caller_thread(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture()
def network() -> Iterator[str]:
    """The same servicer behind a real gRPC server with the same interceptors (the transport the
    local channel stands in for)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(4), interceptors=service_interceptors([ObservabilityInterceptor()])
    )
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait()


def test_answers_and_errors_are_those_of_a_network_call(network: str, on_caller_thread: bool) -> None:
    """Same answer; same failure: code, message, trailing metadata, and the IMGAPI error rebuilt
    from it (the one client-side mapping reads both alike)."""
    local = _local(Health(), on_caller_thread=on_caller_thread)

    async def run() -> None:
        async with aio.insecure_channel(network) as ch:
            assert await _check(local, "ok") == await _check(ch, "ok")
            for name in ("missing", "boom"):
                with pytest.raises(aio.AioRpcError) as over_network:
                    await _check(ch, name)
                with pytest.raises(aio.AioRpcError) as in_process:
                    await _check(local, name)
                a, b = over_network.value, in_process.value
                assert (b.code(), b.details()) == (a.code(), a.details())
                assert list(b.trailing_metadata() or ()) == list(a.trailing_metadata() or ())
                ea, eb = from_rpc_error(a), from_rpc_error(b)
                assert (eb.code, eb.message, eb.errors) == (ea.code, ea.message, ea.errors)
        assert from_rpc_error(b).code == "InternalError"
        await local.close()

    asyncio.run(run())


def test_missing_error_is_the_imgapi_error_itself(on_caller_thread: bool) -> None:
    local = _local(Health(), on_caller_thread=on_caller_thread)

    async def run() -> ImgapiError:
        with pytest.raises(aio.AioRpcError) as ei:
            await _check(local, "missing")
        assert ei.value.code() == grpc.StatusCode.NOT_FOUND
        return from_rpc_error(ei.value)

    err = asyncio.run(run())
    assert (err.code, err.message) == ("ResourceNotFound", "image 'missing' does not exist")


def test_the_handler_gets_its_own_copy_of_the_request(on_caller_thread: bool) -> None:
    local = _local(Health(), on_caller_thread=on_caller_thread)
    request = health_pb2.HealthCheckRequest(service="mutate")

    async def run() -> None:
        await health_pb2_grpc.HealthStub(local).Check(request)

    asyncio.run(run())
    assert request.service == "mutate"


def test_calls_run_on_the_pool_or_on_the_callers_thread(on_caller_thread: bool) -> None:
    servicer = Health()
    local = _local(servicer, on_caller_thread=on_caller_thread)

    async def run() -> str:
        await _check(local, "ok")
        return threading.current_thread().name

    caller = asyncio.run(run())
    assert servicer.threads == [caller] if on_caller_thread else servicer.threads[0].startswith("local-grpc")


def test_the_service_interceptors_see_the_call() -> None:
    """The request id travels as metadata and the service's observability interceptor sets it for
    the handler, as its gRPC server does."""
    seen: list[str] = []

    class Spy(Health):
        def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
            seen.append(request_id.get())
            return super().Check(request, context)

    async def run(channel: LocalChannel, rid: str) -> None:
        await _check(channel, "ok", metadata=((REQUEST_ID_METADATA, rid),))

    asyncio.run(run(_local(Spy()), "req-456"))
    asyncio.run(run(_local(Spy(), with_interceptors=False), "req-789"))
    assert seen[0] == "req-456"
    assert seen[1] != "req-789"  # without the service's interceptors nobody sets it


def test_an_unexpected_failure_without_the_error_interceptor_is_unknown() -> None:
    local = _local(Health(), with_interceptors=False)

    async def run() -> aio.AioRpcError:
        with pytest.raises(aio.AioRpcError) as ei:
            await _check(local, "boom")
        return ei.value

    e = asyncio.run(run())
    assert e.code() == grpc.StatusCode.UNKNOWN and "a bug" in (e.details() or "")


def test_a_passed_deadline_answers_at_once_and_the_handler_sees_it() -> None:
    servicer = Health()
    local = _local(servicer)

    async def run() -> aio.AioRpcError:
        with pytest.raises(aio.AioRpcError) as ei:
            await _check(local, "slow", timeout=0.05)
        return ei.value

    e = asyncio.run(run())
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    servicer.release.set()  # the handler, still running, now looks at its context
    local._pool.shutdown(wait=True)
    assert servicer.seen_active == [False]


def test_streaming_and_unknown_methods_are_unimplemented() -> None:
    local = _local(Health())

    async def run() -> list[aio.AioRpcError]:
        errors = []
        with pytest.raises(aio.AioRpcError) as ei:
            health_pb2_grpc.HealthStub(local).Watch(health_pb2.HealthCheckRequest())
        errors.append(ei.value)
        unknown = local.unary_unary("/grpc.health.v1.Health/Nope", lambda m: m.SerializeToString(), None)
        with pytest.raises(aio.AioRpcError) as ei:
            await unknown(health_pb2.HealthCheckRequest())
        errors.append(ei.value)
        return errors

    streaming, unknown = asyncio.run(run())
    assert streaming.code() == grpc.StatusCode.UNIMPLEMENTED and "Watch" in (streaming.details() or "")
    assert unknown.code() == grpc.StatusCode.UNIMPLEMENTED
