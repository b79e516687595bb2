"""How imgapi processes prove to each other who they are: one shared bearer token.

Every gRPC service (catalog, blob, replication) runs :class:`InternalAuthInterceptor`: a call must
carry the metadata ``authorization: Bearer <token>`` with the stack's internal token
(``IMGAPI_INTERNAL_TOKEN``), or it is answered ``UNAUTHENTICATED`` before any handler (and any
request parsing) runs. gRPC health checks are the one exception: load balancers and supervisors
probe them without credentials, and they reveal nothing but "serving".

Clients (the gateway, the replication service, the CLI, test and bench helpers) open their channels
with :func:`channel` / :func:`aio_channel`, which attach the header to every call.

A service without a token accepts every caller; it may only listen on a loopback address
(:func:`check_bind`). See docs/security.md for the whole trust model.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc import aio
from pydantic import Field, SecretStr

from imgapi_common.log_lines import TOKEN_SETTING as TOKEN_SETTING  # re-exported

METADATA_KEY = "authorization"
SCHEME = "Bearer "
#: Methods answered without credentials.
EXEMPT_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})
#: Shortest token accepted (a random token of 32 bytes is 43 characters in base64).
MIN_TOKEN_LENGTH = 16


def token_field() -> Any:
    """The settings field of the internal token (``internal_token``, read from IMGAPI_INTERNAL_TOKEN).

    A settings class using it needs ``populate_by_name=True`` so that code can pass
    ``internal_token=...``.
    """
    return Field(default=SecretStr(""), validation_alias=TOKEN_SETTING)


def check_token(token: SecretStr) -> None:
    value = token.get_secret_value()
    if value and len(value) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{TOKEN_SETTING} must be at least {MIN_TOKEN_LENGTH} characters")


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(bind: str, token: SecretStr, bind_setting: str) -> None:
    """Refuse to serve unauthenticated on anything but loopback (raises ValueError naming the settings)."""
    check_token(token)
    host = bind.rsplit(":", 1)[0]
    if not token.get_secret_value() and not is_loopback(host):
        raise ValueError(
            f"{bind_setting}={bind} listens beyond this host, so callers must authenticate: "
            f"set {TOKEN_SETTING} (the same random secret, at least {MIN_TOKEN_LENGTH} characters, "
            f"in every imgapi process of the stack), or bind to 127.0.0.1"
        )


# --- server side --------------------------------------------------------------------------------


def _deny(_request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing or wrong internal token ({TOKEN_SETTING})")


def _deny_stream(_request: Any, context: grpc.ServicerContext) -> Any:
    _deny(_request, context)
    yield b""  # pragma: no cover (abort raises)


def _deny_handler(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
    """A handler of the same shape that refuses the call without parsing the request."""
    if handler is not None and handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_deny)
    if handler is not None and handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_deny_stream)
    if handler is not None and handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(_deny_stream)
    return grpc.unary_unary_rpc_method_handler(_deny)


class InternalAuthInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Lets a call through only with ``authorization: Bearer <token>`` (health checks excepted).

    With an empty token every call passes (a loopback-only service, see :func:`check_bind`).
    """

    def __init__(self, token: SecretStr | str) -> None:
        value = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._expected = (SCHEME + value).encode() if value else b""

    @property
    def enforcing(self) -> bool:
        return bool(self._expected)

    def authenticated(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        if not self._expected:
            return True
        for key, value in metadata or ():
            if key == METADATA_KEY:
                given = value if isinstance(value, bytes) else value.encode()
                return hmac.compare_digest(given, self._expected)
        return False

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:  # type: ignore[type-arg]
        if (
            not self._expected
            or handler_call_details.method in EXEMPT_METHODS
            or self.authenticated(handler_call_details.invocation_metadata)  # type: ignore[arg-type]
        ):
            return continuation(handler_call_details)
        return _deny_handler(continuation(handler_call_details))


# --- client side --------------------------------------------------------------------------------


def token_value(token: SecretStr | str) -> str:
    return token.get_secret_value() if isinstance(token, SecretStr) else token


def _with_token(metadata: Any, header: tuple[str, str]) -> list[tuple[str, Any]]:
    out = [m for m in (metadata or ()) if m[0] != METADATA_KEY]
    out.append(header)
    return out


class _SyncCallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, base: grpc.ClientCallDetails, metadata: list[tuple[str, Any]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata  # type: ignore[assignment]
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class _SyncTokenInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    def __init__(self, token: str) -> None:
        self._header = (METADATA_KEY, SCHEME + token)

    def _details(self, d: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _SyncCallDetails(d, _with_token(d.metadata, self._header))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


class _TokenCallable:
    """A multicallable of :class:`_TokenChannel`: the same call, with the token in its metadata."""

    __slots__ = ("_header", "_inner")

    def __init__(self, inner: Any, header: tuple[str, str]) -> None:
        self._inner = inner
        self._header = header

    def __call__(self, request: Any = None, *, metadata: Any = None, **kwargs: Any) -> Any:
        return self._inner(request, metadata=tuple(_with_token(metadata, self._header)), **kwargs)


class _TokenChannel(aio.Channel):
    """An asyncio channel whose calls carry the internal token.

    Not a client interceptor, on purpose: grpc.aio runs an intercepted call as an extra task
    (~75 µs of CPU per call) and feeds a stream's requests through its own request iterator even
    when the caller writes them with ``write()``, which :class:`blob_client.aio.Upload` must do to
    learn why the blob service ended an upload early (see there).
    """

    def __init__(self, inner: aio.Channel, token: str) -> None:
        self._inner = inner
        self._header = (METADATA_KEY, SCHEME + token)

    async def __aenter__(self) -> _TokenChannel:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.close(None)

    async def close(self, grace: float | None = None) -> None:
        await self._inner.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._inner.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._inner.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._inner.channel_ready()

    def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
        return _TokenCallable(self._inner.unary_unary(*args, **kwargs), self._header)

    def unary_stream(self, *args: Any, **kwargs: Any) -> Any:
        return _TokenCallable(self._inner.unary_stream(*args, **kwargs), self._header)

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:
        return _TokenCallable(self._inner.stream_unary(*args, **kwargs), self._header)

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:
        return _TokenCallable(self._inner.stream_stream(*args, **kwargs), self._header)


def channel(target: str, token: SecretStr | str, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """A (plaintext) channel to an imgapi service that sends the internal token with every call."""
    ch = grpc.insecure_channel(target, options=list(options))
    value = token_value(token)
    return grpc.intercept_channel(ch, _SyncTokenInterceptor(value)) if value else ch


def aio_channel(target: str, token: SecretStr | str, options: Sequence[tuple[str, Any]] = ()) -> aio.Channel:
    """The asyncio form of :func:`channel`."""
    value = token_value(token)
    inner = aio.insecure_channel(target, options=list(options))
    return _TokenChannel(inner, value) if value else inner
