"""A gRPC server interceptor that wraps each method's behaviour once.

The wrapped handler of each method is built on its first call and cached: wrapping per call
showed up as a third of an empty RPC's cost. Subclasses say how to wrap one method's unary
behaviour and its response-streaming behaviour (:meth:`MethodWrappingInterceptor.wrappers`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

#: A handler's behaviour: ``fn(request_or_iterator, context)``.
Behaviour = Callable[..., Any]
StreamBehaviour = Callable[..., Iterator[Any]]
Wrappers = tuple[Callable[[Behaviour], Behaviour], Callable[[StreamBehaviour], StreamBehaviour]]


class MethodWrappingInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps every method's handler with :meth:`wrappers` (once per method)."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}  # type: ignore[type-arg]
        self._lock = threading.Lock()

    def wrappers(self, full_method: str) -> Wrappers:
        """(wrap a unary-response behaviour, wrap a streaming-response one) for ``full_method``."""
        raise NotImplementedError

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:  # type: ignore[type-arg]
        name = handler_call_details.method
        cached = self._handlers.get(name)
        if cached is not None:
            return cached
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        wrapped = self._wrap(name, handler)
        with self._lock:
            self._handlers[name] = wrapped
        return wrapped

    def _wrap(self, name: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        wrap_unary, wrap_stream_out = self.wrappers(name)
        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(wrap_unary(handler.unary_unary), **kw)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(wrap_unary(handler.stream_unary), **kw)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(wrap_stream_out(handler.unary_stream), **kw)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(wrap_stream_out(handler.stream_stream), **kw)
        return handler
