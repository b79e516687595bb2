"""An in-process gRPC transport: a service hosted in the caller's process, called without a socket.

:class:`LocalChannel` stands in for a ``grpc.aio.Channel``: a generated stub built on it
(``CatalogServiceStub(LocalChannel(...))``) calls the service's own method handlers, through the
service's own server interceptors (observability, the one error interceptor), in this process.
What crosses is what crosses a socket: the request and the answer are serialized and parsed again
(so neither side can reach into the other's objects), and a failure arrives as a
``grpc.aio.AioRpcError`` with the same code, message and trailing metadata (the packed
``google.rpc.Status``) a network call would carry, so the caller's one error mapping
(imgapi_common.grpc_errors) reads both alike. This is grpc-java's in-process transport
(``InProcessChannelBuilder``) for Python, which grpcio does not provide.

Handlers are synchronous. By default each call runs on the channel's thread pool, so a slow
database never stalls the caller's event loop; a call whose deadline passes answers
DEADLINE_EXCEEDED at once and the handler sees ``is_active()`` turn false. A service whose calls are
short and never wait on the network may run them on the caller's own thread instead: handing a call
to a pool thread and back costs about 0.5 ms of CPU under load (the two threads pass the GIL to
and fro), more than a catalog call on SQLite itself, and a loopback gRPC call costs about as much
again (docs/performance.md, section 7). Only unary methods are carried: a response-streaming method (a
change feed) answers UNIMPLEMENTED, and its callers keep a network channel.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from grpc import aio

Serializer = Callable[[Any], bytes] | None
Deserializer = Callable[[bytes], Any] | None
Metadata = Sequence[tuple[str, str | bytes]]


class _Aborted(Exception):
    """Raised by :meth:`LocalContext.abort`: the call ended with the status the context holds."""


@dataclass(frozen=True)
class _CallDetails(grpc.HandlerCallDetails):  # type: ignore[misc]
    method: str
    invocation_metadata: tuple[tuple[str, str | bytes], ...]


class LocalContext(grpc.ServicerContext):  # type: ignore[misc]
    """The server side of one in-process call (what a servicer method may ask of its context)."""

    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...], deadline: float | None) -> None:
        self._metadata = metadata
        self._deadline = deadline
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None
        self._initial: tuple[tuple[str, str | bytes], ...] = ()
        self._trailing: tuple[tuple[str, str | bytes], ...] = ()
        self.cancelled = False

    # --- what the caller sent ---
    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._metadata

    def peer(self) -> str:
        return "local:"

    def peer_identities(self) -> None:
        return None

    def peer_identity_key(self) -> None:
        return None

    def auth_context(self) -> dict[str, Any]:
        return {}

    def is_active(self) -> bool:
        return not self.cancelled and (self._deadline is None or time.monotonic() < self._deadline)

    def time_remaining(self) -> float:
        return float("inf") if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def cancel(self) -> None:
        self.cancelled = True

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False

    # --- what the server answers besides the message ---
    def send_initial_metadata(self, initial_metadata: Metadata) -> None:
        self._initial = tuple(initial_metadata)

    def set_trailing_metadata(self, trailing_metadata: Metadata) -> None:
        self._trailing = tuple(trailing_metadata)

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailing

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_details(self, details: str) -> None:
        self._details = details

    def details(self) -> str | None:
        return self._details

    def set_compression(self, compression: Any) -> None:
        pass

    def disable_next_message_compression(self) -> None:
        pass

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        if code == grpc.StatusCode.OK:
            raise ValueError("abort() with StatusCode.OK")
        self._code, self._details = code, details
        raise _Aborted()

    def abort_with_status(self, status: grpc.Status) -> NoReturn:
        self._trailing = (*self._trailing, *(status.trailing_metadata or ()))
        self.abort(status.code, status.details)

    def error(self) -> aio.AioRpcError:
        return _rpc_error(self._code or grpc.StatusCode.UNKNOWN, self._details, self._initial, self._trailing)


def _rpc_error(
    code: grpc.StatusCode,
    details: str | None,
    initial: Metadata = (),
    trailing: Metadata = (),
) -> aio.AioRpcError:
    return aio.AioRpcError(code, aio.Metadata(*initial), aio.Metadata(*trailing), details, None)


class _HandlerCollector:
    """The part of ``grpc.Server`` a generated ``add_XServicer_to_server`` uses."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}  # type: ignore[type-arg]

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        pass  # the same handlers arrive by name below

    def add_registered_method_handlers(
        self,
        service: str,
        method_handlers: Mapping[str, grpc.RpcMethodHandler],  # type: ignore[type-arg]
    ) -> None:
        for name, handler in method_handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


def method_handlers(register: Callable[[Any, Any], None], servicer: Any) -> dict[str, grpc.RpcMethodHandler]:  # type: ignore[type-arg]
    """The method handlers a generated ``add_XServicer_to_server(servicer, server)`` registers, by
    full method name (``/package.Service/Method``)."""
    collector = _HandlerCollector()
    register(servicer, collector)
    return collector.handlers


class _UnaryUnary:
    """``channel.unary_unary(...)``: one method of a stub."""

    def __init__(
        self, channel: LocalChannel, method: str, serialize: Serializer, parse: Deserializer
    ) -> None:
        self._channel, self._method = channel, method
        self._serialize, self._parse = serialize, parse
        self._inline = channel.on_caller_thread

    async def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        payload = self._serialize(request) if self._serialize is not None else request
        deadline = None if timeout is None else time.monotonic() + timeout
        context = LocalContext(tuple(metadata or ()), deadline)
        if self._inline:
            answer = self._channel.serve(self._method, payload, context)
        else:
            call = self._channel.submit(self._method, payload, context)
            try:
                answer = await (call if timeout is None else asyncio.wait_for(call, timeout))
            except TimeoutError:
                context.cancel()
                raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
            except asyncio.CancelledError:
                context.cancel()
                raise
        return self._parse(answer) if self._parse is not None else answer


class _Unsupported:
    """A streaming method of a stub on a local channel: answers UNIMPLEMENTED (see the module doc)."""

    def __init__(self, method: str) -> None:
        self._method = method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _rpc_error(
            grpc.StatusCode.UNIMPLEMENTED, f"{self._method}: streaming calls need a network channel"
        )


class LocalChannel(aio.Channel):
    """A ``grpc.aio.Channel`` stand-in for a service hosted in this process (see the module doc).

    ``handlers`` come from :func:`method_handlers`; ``interceptors`` are the service's server
    interceptors, in the order its server runs them. Calls run on a pool of ``max_workers`` threads,
    or with ``on_caller_thread`` on the calling thread itself (the event loop: for a service whose
    calls are short and never wait on the network; no deadline is then enforced).
    """

    def __init__(
        self,
        handlers: Mapping[str, grpc.RpcMethodHandler],  # type: ignore[type-arg]
        interceptors: Sequence[grpc.ServerInterceptor] = (),  # type: ignore[type-arg]
        max_workers: int = 8,
        on_close: Callable[[], None] | None = None,
        on_caller_thread: bool = False,
    ) -> None:
        self.on_caller_thread = on_caller_thread
        # The interceptor chain around the handler lookup, built once and resolved per call (as a
        # server does: an interceptor may decide by the call's metadata).
        found = dict(handlers)
        resolve: Callable[[Any], Any] = lambda details: found.get(details.method)  # noqa: E731
        for interceptor in reversed(interceptors):
            resolve = functools.partial(interceptor.intercept_service, resolve)
        self._resolve = resolve
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="local-grpc")
        self._on_close = on_close

    # --- the grpc.aio.Channel surface a generated stub uses (a call is awaitable; it has none of
    # the call object's extras, such as initial_metadata()) ---
    def unary_unary(  # type: ignore[override]
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool = False,
    ) -> _UnaryUnary:
        return _UnaryUnary(self, method, request_serializer, response_deserializer)

    def unary_stream(self, method: str, *_args: Any, **_kwargs: Any) -> _Unsupported:  # type: ignore[override]
        return _Unsupported(method)

    stream_unary = unary_stream  # type: ignore[assignment]
    stream_stream = unary_stream  # type: ignore[assignment]

    async def close(self, grace: float | None = None) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._on_close is not None:
            self._on_close()

    async def __aenter__(self) -> LocalChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return grpc.ChannelConnectivity.READY  # nothing to connect

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        raise RuntimeError("an in-process channel is always READY")

    async def channel_ready(self) -> None:
        return None

    # --- the server side ---
    def submit(self, method: str, payload: Any, context: LocalContext) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().run_in_executor(self._pool, self.serve, method, payload, context)

    def serve(self, method: str, payload: Any, context: LocalContext) -> Any:
        """Run one unary call as a server would (on a pool thread or the caller's); returns the serialized answer
        or raises the call's ``AioRpcError``."""
        handler = self._resolve(_CallDetails(method, context.invocation_metadata()))
        if handler is None or handler.unary_unary is None:
            raise _rpc_error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        request = handler.request_deserializer(payload) if handler.request_deserializer else payload
        try:
            response = handler.unary_unary(request, context)
        except Exception as e:
            if context.code() in (None, grpc.StatusCode.OK):
                raise _rpc_error(grpc.StatusCode.UNKNOWN, f"Exception calling application: {e}") from None
            raise context.error() from None
        if context.code() not in (None, grpc.StatusCode.OK):
            raise context.error()
        return handler.response_serializer(response) if handler.response_serializer else response
