"""The HTTP/1.1 connection protocol of the gateway: uvicorn's httptools protocol with request-head limits.

Without a front proxy (``scripts/run``, ``imgapi serve``) the gateway itself is the edge, so each
connection enforces (settings ``max_header_bytes``, ``max_header_count``, ``header_timeout_seconds``):

* the request head (request line + headers) is at most ``max_header_bytes`` bytes and
  ``max_header_count`` header lines, checked as the bytes arrive: a larger head is answered and
  the connection closed without buffering it;
* the head must be complete within ``header_timeout_seconds`` of its first byte, and a new
  connection must start a request within that time: slow or idle senders are disconnected;
* a request the HTTP parser refuses (``Content-Length: -1`` or ``1e3``, ``Content-Length`` with
  ``Transfer-Encoding``, garbage) is answered with IMGAPI's JSON error body, not uvicorn's text.

All of these answer 400 ``BadRequestError`` with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.http.responses import common_headers, dumps
from gateway.settings import GatewaySettings

log = logging.getLogger("gateway.http.protocol")


@dataclass(frozen=True)
class EdgeLimits:
    max_header_bytes: int
    max_header_count: int
    header_timeout_seconds: float
    server_name: str
    host_name: str

    @classmethod
    def from_settings(cls, settings: GatewaySettings, host_name: str) -> EdgeLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout_seconds=settings.header_timeout_seconds,
            server_name=settings.server_name,
            host_name=settings.host_name or host_name,
        )


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request head that passed a limit."""


class EdgeProtocol(HttpToolsProtocol):
    """One connection. Subclasses made by :func:`edge_protocol` carry the limits."""

    limits: EdgeLimits

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # waiting for (the rest of) a request head
        self._head_bytes = 0  # bytes received while in the head (may include a following body)
        self._head_size = 0  # bytes of the request line and headers parsed so far
        self._head_count = 0
        self._refusal: str | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    # --- the head clock --------------------------------------------------------------------------

    def _start_head_clock(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout_seconds, self._head_timed_out)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or self.transport.is_closing() or not self._in_head:
            return
        if self._head_bytes == 0:
            self.transport.close()  # idle: nothing to answer
            return
        self.send_400_response("request head not received in time")

    # --- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._start_head_clock()  # a new connection must start a request in time

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still in the head after this whole chunk: every byte received so far belongs to it.
        if (
            self._in_head
            and self._head_bytes > self.limits.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._refusal = "request head too large"
            self.send_400_response(self._refusal)

    # --- parser callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_count = 0
        self._head_size = 0
        self._start_head_clock()

    def _check_head_size(self) -> None:
        if self._head_size > self.limits.max_header_bytes:
            self._refusal = "request head too large"
            raise _Refused(self._refusal)

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        self._check_head_size()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        if self._head_count > self.limits.max_header_count:
            self._refusal = "too many request headers"
            raise _Refused(self._refusal)
        self._head_size += len(name) + len(value) + 4
        self._check_head_size()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._stop_head_clock()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # What follows this request's body is the next request's head (the keep-alive timeout
        # covers the wait for it; its clock starts with its first byte).
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        super().on_message_complete()

    # --- refusals --------------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """IMGAPI's JSON error for a request that cannot be parsed or passed a head limit."""
        self._stop_head_clock()
        message = self._refusal or f"malformed HTTP request: {msg}"
        body = dumps({"code": "BadRequestError", "message": message})
        request_id = str(uuid.uuid4())
        log.warning("request %s refused before routing: %s", request_id, message)
        headers = common_headers(
            request_id=request_id,
            server_name=self.limits.server_name,
            host_name=self.limits.host_name,
            started=self.loop.time(),
            close=True,
        )
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"\r\n",
        ]
        if not self.transport.is_closing():
            self.transport.write(b"".join(head) + body)
            self.transport.close()


def edge_protocol(limits: EdgeLimits) -> type[EdgeProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to these limits."""
    return type("EdgeProtocol", (EdgeProtocol,), {"limits": limits})


@functools.cache
def _environment_limits() -> EdgeLimits:
    return EdgeLimits.from_settings(GatewaySettings(), socket.gethostname())


class EnvironmentEdgeProtocol(EdgeProtocol):
    """For worker processes (``processes > 1``), which uvicorn starts by import path: the limits of
    the environment's settings (``IMGAPI_GATEWAY_*``), read once per process."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.limits = _environment_limits()
        super().__init__(config, server_state, app_state, _loop)
