"""Per-request context: request id, negotiated API version, query access, JSON body, caller scope.

Handlers receive a :class:`RequestContext` and return a Starlette ``Response``::

    async def handler(ctx: RequestContext) -> Response

``ctx.app`` holds the process-wide state (settings, gRPC clients, the catalog's server config,
auth keys); ``ctx.caller()``, ``ctx.view`` and ``ctx.rpc`` give what every catalog call needs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from imgapi.v1 import catalog_pb2, common_pb2
from starlette.requests import Request

from gateway.clients import Clients
from gateway.settings import GatewaySettings
from gateway.versions import Negotiated
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
    #: HTTP Signature key store (gateway.auth.KeyStore), None with ``auth_type=none``.
    keys: Any = None
    host_name: str = field(default_factory=socket.gethostname)
    #: Singletons of feature modules (e.g. the job registry of gateway.jobs), keyed by module name.
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def has_channels(self) -> bool:
        return len(self.config.channels) > 0


class Query:
    """Query string with IMGAPI semantics: repeated keys kept, dotted keys verbatim, empty = absent."""

    def __init__(self, raw: str) -> None:
        self.raw_string = raw
        self.items: list[tuple[str, str]] = parse_qsl(raw, keep_blank_values=True)
        self._first: dict[str, str] = {}
        for k, v in self.items:
            self._first.setdefault(k, v)

    def get(self, name: str) -> str | None:
        """First value; None when absent or empty."""
        v = self._first.get(name)
        return v if v else None

    def raw(self, name: str) -> str:
        """First value as received ("" when absent): what the catalog validates itself."""
        return self._first.get(name, "")

    def present(self, name: str) -> bool:
        """The key appears at all (even ``?name=``)."""
        return name in self._first

    def all(self, name: str) -> list[str]:
        """Every non-empty value of a repeatable key (``billing_tag``)."""
        return [v for k, v in self.items if k == name and v]

    def prefixed(self, prefix: str) -> dict[str, str]:
        """``tag.KEY=VALUE`` pairs (first value of each key), keys without the prefix."""
        out: dict[str, str] = {}
        for k, v in self.items:
            if k.startswith(prefix) and k[len(prefix) :] not in out:
                out[k[len(prefix) :]] = v
        return out


@dataclass(frozen=True)
class JsonBody:
    """A JSON request body (README §5.1). ``present`` is False for an empty or non-JSON body."""

    present: bool
    text: str = ""
    value: Any = None


ABSENT_BODY = JsonBody(False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Unexpected token {name[0]} in JSON")


def parse_json_body(body: bytes, headers: Mapping[str, str]) -> JsonBody:
    """Content-MD5 check (400 BadDigest) and JSON parsing (400 InvalidContent)."""
    if not body:
        return ABSENT_BODY
    given_md5 = headers.get("content-md5")
    if given_md5 is not None:
        computed = base64.b64encode(hashlib.md5(body).digest()).decode("ascii")
        if given_md5 != computed:
            raise ImgapiError("BadDigest", f"Content-MD5 '{given_md5}' didn't match '{computed}'")
    ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        return ABSENT_BODY
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
        raise ImgapiError("InvalidContent", f"Invalid JSON: {msg}") from None
    return JsonBody(True, text, value)


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
        return self.query.get("account")

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", self.request_id),)

    @property
    def rpc(self) -> dict[str, Any]:
        """Keyword arguments of an ordinary gRPC call: ``await stub.X(req, **ctx.rpc)``."""
        return {"timeout": self.app.clients.timeout, "metadata": self.metadata}

    @property
    def view(self) -> common_pb2.ImageView:
        return common_pb2.ImageView(include_channels=self.negotiated.include_channels)

    def caller(self) -> common_pb2.CallerContext:
        return common_pb2.CallerContext(
            account=self.query.raw("account"),
            channel=self.query.raw("channel"),
            authenticated=self.authenticated,
            remote_user=self.remote_user or "",
            request_id=self.request_id,
            user_agent=self.request.headers.get("user-agent", ""),
        )

    def preconditions(
        self, subject: common_pb2.Preconditions.Subject.ValueType = common_pb2.Preconditions.SUBJECT_IMAGE
    ) -> common_pb2.Preconditions:
        h = self.request.headers
        return common_pb2.Preconditions(
            if_match=h.get("if-match", ""),
            if_none_match=h.get("if-none-match", ""),
            if_modified_since=h.get("if-modified-since", ""),
            if_unmodified_since=h.get("if-unmodified-since", ""),
            subject=subject,
        )

    async def check_channel(self, write: bool) -> None:
        """Step **chan** on its own (the catalog also checks it on every call): 422 on a bad channel."""
        if self.app.has_channels:
            await self.clients.catalog.ResolveChannel(
                catalog_pb2.ResolveChannelRequest(channel=self.query.raw("channel"), write=write), **self.rpc
            )

    async def read_json_body(self) -> JsonBody:
        """Step **body** (README §5.1); channel errors take precedence over body errors."""
        raw = await self.request.body()
        if len(raw) > self.settings.max_json_body:
            raise ImgapiError("InvalidContent", "request body too large")
        try:
            self.body = parse_json_body(raw, self.request.headers)
        except ImgapiError:
            await self.check_channel(write=True)
            raise
        return self.body
