"""Per-request context: request id, negotiated API version, query access, JSON body, caller scope.

Handlers receive a :class:`RequestContext` and return a Starlette ``Response``::

    async def handler(ctx: RequestContext) -> Response

``ctx.app`` holds the process-wide state (settings, gRPC clients, the catalog's server config,
auth keys); ``ctx.caller()``, ``ctx.view`` and ``ctx.rpc`` give what every catalog call needs.
"""

from __future__ import annotations

import socket
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imgapi.v1 import catalog_pb2, common_pb2
from starlette.requests import Request

from gateway.adapters.grpc_clients import Clients
from gateway.adapters.list_answers import ListAnswers
from gateway.http.auth import KeyStore
from gateway.http.body import ABSENT_BODY, JsonBody, parse_json_body, read_limited
from gateway.http.conditional import preconditions_from
from gateway.http.query import Query
from gateway.http.versions import Negotiated
from gateway.settings import GatewaySettings
from imgapi_common.errors import ImgapiError

UUID_CHARS = frozenset("0123456789abcdef-")


def is_uuid(s: str) -> bool:
    """IMGAPI's lower-case UUID pattern (upper-case hex is not accepted)."""
    if len(s) != 36 or not UUID_CHARS.issuperset(s):
        return False
    return all(s[i] == "-" for i in (8, 13, 18, 23)) and s.count("-") == 4


@dataclass
class AppState:
    """Process-wide state, built at start-up (``app.state.imgapi``)."""

    settings: GatewaySettings
    clients: Clients
    #: The catalog's configuration (mode, channels, admin uuid, storage names), cached at start-up.
    config: catalog_pb2.ServerConfig
    #: HTTP Signature key store, None with ``auth_type=none``.
    keys: KeyStore | None = None
    host_name: str = field(default_factory=socket.gethostname)
    #: The OpenAPI document of the mounted routes (``GET /openapi.json``), built at start-up.
    openapi_document: dict[str, Any] = field(default_factory=dict)
    #: Rendered ListImages answers, revalidated with the catalog (gateway/adapters/list_answers.py).
    list_answers: ListAnswers = field(default_factory=lambda: ListAnswers(0))

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def has_channels(self) -> bool:
        return len(self.config.channels) > 0


def request_id_from(headers: Mapping[str, str]) -> str:
    return headers.get("x-request-id") or headers.get("request-id") or str(uuidlib.uuid4())


@dataclass
class RequestContext:
    app: AppState
    request: Request
    request_id: str
    negotiated: Negotiated
    #: Path parameters by name (``uuid``, ``arg``, ``job_uuid``...), percent-decoded.
    params: dict[str, str]
    query: Query
    #: Raw path as received (for IMGAPI's ``<path> does not exist`` messages).
    raw_path: str
    #: Authenticated user (HTTP Signature), None for anonymous requests.
    remote_user: str | None = None
    body: JsonBody = ABSENT_BODY

    # --- convenience ---------------------------------------------------------------------------

    @property
    def settings(self) -> GatewaySettings:
        return self.app.settings

    @property
    def clients(self) -> Clients:
        return self.app.clients

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def url(self) -> str:
        """Request URL as received: path plus query string."""
        q = self.query.raw_string
        return f"{self.raw_path}?{q}" if q else self.raw_path

    @property
    def authenticated(self) -> bool:
        return self.remote_user is not None

    @property
    def uuid(self) -> str:
        return self.params["uuid"]

    @property
    def account(self) -> str | None:
        """The ``account`` of a user request; None for an operator request (no ``account`` at all).

        ``account=`` (empty) is a user request whose account owns nothing (never an operator one);
        a repeated ``account`` reads as its joined text, which is not a UUID (422)."""
        return self.query.text("account")

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", self.request_id),)

    @property
    def rpc(self) -> dict[str, Any]:
        """Keyword arguments of an ordinary gRPC call: ``await stub.X(req, **ctx.rpc)``."""
        return {"timeout": self.app.clients.timeout, "metadata": self.metadata}

    @property
    def view(self) -> common_pb2.ImageView:
        """The view of calls whose answer is read beyond its REST text (typed fields)."""
        return common_pb2.ImageView(include_channels=self.negotiated.include_channels)

    @property
    def answer_view(self) -> common_pb2.ImageView:
        """The view of calls whose answer is only the image's REST text (``view_only``)."""
        return common_pb2.ImageView(include_channels=self.negotiated.include_channels, view_only=True)

    def caller(self) -> common_pb2.CallerContext:
        return common_pb2.CallerContext(
            account=self.query.raw("account"),
            account_present=self.query.present("account"),
            channel=self.query.raw("channel"),
            authenticated=self.authenticated,
            remote_user=self.remote_user or "",
            request_id=self.request_id,
            user_agent=self.request.headers.get("user-agent", ""),
        )

    def preconditions(
        self, subject: common_pb2.Preconditions.Subject.ValueType = common_pb2.Preconditions.SUBJECT_IMAGE
    ) -> common_pb2.Preconditions:
        return preconditions_from(self.request.headers, subject)

    async def check_channel(self, write: bool) -> None:
        """Step **chan** on its own (the catalog also checks it on every call): 422 on a bad channel."""
        if self.app.has_channels:
            await self.clients.catalog.ResolveChannel(
                catalog_pb2.ResolveChannelRequest(channel=self.query.raw("channel"), write=write), **self.rpc
            )

    async def read_json_body(self) -> JsonBody:
        """Step **body**: a non-JSON body counts as absent; channel errors take precedence over body
        errors."""
        raw = await read_limited(self.request, self.settings.max_json_body)
        try:
            self.body = parse_json_body(raw, self.request.headers)
        except ImgapiError:
            await self.check_channel(write=True)
            raise
        return self.body
