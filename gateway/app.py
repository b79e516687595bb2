"""The ASGI application: start-up (gRPC clients, server config, auth keys) and the dispatcher.

Per request: path match (404 / 405 + Allow) -> Accept-Version (400
InvalidVersion) -> auth and uuid (strict routes: auth first; others: uuid first) -> JSON body
(routes with ``body=True``; channel errors first) -> handler. Every response, errors included,
gets the common headers (request id, server name, response time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote_to_bytes

import grpc
from imgapi.v1 import catalog_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from gateway.adapters.balance import balance, keep_balanced
from gateway.adapters.grpc_clients import InProcess, create_clients
from gateway.adapters.list_answers import ListAnswers
from gateway.context import AppState, RequestContext, is_uuid, request_id_from
from gateway.http.auth import AuthMode, KeyStore, authenticate
from gateway.http.body import CLOSE_SCOPE_KEY
from gateway.http.errors import MethodNotAllowed, render
from gateway.http.query import Query
from gateway.http.responses import common_headers
from gateway.http.versions import negotiate
from gateway.openapi.document import build_document
from gateway.routes.table import Mounted, match_path, mount
from gateway.settings import GatewaySettings
from imgapi_common.errors import ImgapiError
from imgapi_common.internal_auth import TOKEN_SETTING
from imgapi_common.observability import observe_http
from imgapi_common.observability import request_id as request_id_var

log = logging.getLogger("gateway")

#: Where the dispatcher leaves the matched route pattern for the metrics.
ROUTE_SCOPE_KEY = "imgapi.route"


_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _segments(raw_path: str) -> list[str]:
    """Decoded path segments. Leading repeated slashes collapse (``//images`` is ``/images``); inner
    ones are empty segments (``/images//file/from-url`` has an empty uuid). A segment JavaScript's
    ``decodeURIComponent`` refuses (a ``%`` without two hex digits, or not UTF-8) is a 400."""
    raw_path = "/" + raw_path.lstrip("/")
    out = []
    for seg in raw_path.split("/")[1:]:
        try:
            if _PERCENT.search(seg):
                raise UnicodeDecodeError("utf-8", b"", 0, 1, "bad escape")
            out.append(unquote_to_bytes(seg).decode("utf-8"))
        except UnicodeDecodeError:
            raise ImgapiError("BadRequestError", "URI malformed") from None
    return out


class Dispatcher:
    """Raw ASGI endpoint implementing IMGAPI's routing over :data:`gateway.routes.table.ROUTES`."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        request = Request(scope, receive)
        state: AppState = self.app.state.imgapi
        mounted: Mounted = self.app.state.mounted
        request_id = request_id_from(request.headers)
        token = request_id_var.set(request_id)  # stamped on every log line of this request
        try:
            try:
                response = await self._handle(request, state, mounted, request_id)
            except Exception as exc:  # every failure is rendered as IMGAPI JSON
                response = render(exc)
                if response.status_code >= 500:  # logged with the request id, unexpected ones loudest
                    (log.error if response.status_code == 500 else log.warning)(
                        "request %s: %s %s answered %d: %s",
                        request_id,
                        request.method,
                        scope.get("path", ""),
                        response.status_code,
                        bytes(response.body).decode("utf-8", "replace"),
                    )
            route = scope.get(ROUTE_SCOPE_KEY, "unmatched")
            observe_http(route, request.method, response.status_code, time.monotonic() - started)
            if state.settings.access_log:
                log.info("%s %s %s", request.method, scope.get("path", ""), response.status_code)
        finally:
            request_id_var.reset(token)
        response.raw_headers.extend(
            common_headers(
                request_id=request_id,
                server_name=state.settings.server_name,
                host_name=state.settings.host_name or state.host_name,
                started=started,
                close=bool(scope.get(CLOSE_SCOPE_KEY)),
            )
        )
        await response(scope, receive, send)

    async def _handle(self, request: Request, state: AppState, mounted: Mounted, request_id: str) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.scope["path"]
        raw_path = raw_path.split("?", 1)[0]
        method = request.method
        m = match_path(mounted.routes, _segments(raw_path))
        if m is None:
            raise ImgapiError("ResourceNotFound", f"{raw_path} does not exist")
        request.scope[ROUTE_SCOPE_KEY] = m.route.pattern
        op = m.route.ops.get(method)
        if op is None:
            raise MethodNotAllowed(method, list(m.route.ops))
        header = request.headers.get("accept-version")
        negotiated = negotiate(header)
        if negotiated is None:
            raise ImgapiError("InvalidVersion", f"{header} is not supported by {method} {raw_path}")
        ctx = RequestContext(
            app=state,
            request=request,
            request_id=request_id,
            negotiated=negotiated,
            params=m.params,
            query=Query(request.scope.get("query_string", b"").decode("latin-1")),
            raw_path=raw_path,
        )
        if op.auth is AuthMode.STRICT:
            ctx.remote_user = authenticate(request, op.auth, state.settings, state.keys)
            self._check_uuid(ctx)
        else:
            self._check_uuid(ctx)
            ctx.remote_user = authenticate(request, op.auth, state.settings, state.keys)
        if op.body:
            await ctx.read_json_body()
        return await op.handler(ctx)

    @staticmethod
    def _check_uuid(ctx: RequestContext) -> None:
        u = ctx.params.get("uuid")
        if u is not None and not is_uuid(u):
            raise ImgapiError("ResourceNotFound", f"{ctx.url} does not exist")


async def _server_config(
    state_settings: GatewaySettings, stub: Any, deadline: float
) -> catalog_pb2.ServerConfig:
    """GetServerConfig, waiting for the catalog to come up (start-up only)."""
    while True:
        try:
            cfg: catalog_pb2.ServerConfig = await stub.GetServerConfig(
                catalog_pb2.GetServerConfigRequest(), timeout=5, wait_for_ready=True
            )
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:  # type: ignore[attr-defined]
                raise RuntimeError(
                    f"the catalog at {state_settings.catalog_target} refused the gateway's credentials: "
                    f"set {TOKEN_SETTING} to the token of the catalog and blob services"
                ) from None
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
            continue
        if cfg.mode == "dc" and cfg.channels:
            raise RuntimeError(
                "the catalog runs in dc mode with channels configured (IMGAPI_CATALOG_CHANNELS), which "
                "is not supported: a dc server has no channels; unset IMGAPI_CATALOG_CHANNELS or use "
                "IMGAPI_CATALOG_MODE=public or private"
            )
        return cfg


def create_app(settings: GatewaySettings, in_process: InProcess | None = None) -> Starlette:
    """The gateway ASGI app. Start-up connects to the catalog and blob services; ``in_process``
    names the ones hosted in this process, reached through in-process channels instead."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        clients = create_clients(settings, in_process)
        config = await _server_config(
            settings, clients.catalog, time.monotonic() + settings.startup_timeout_seconds
        )
        keys: KeyStore | None = None
        if settings.auth_type == "signature":
            keys = KeyStore(settings)
            keys.reload()
        try:
            await balance(clients, settings.catalog_target)  # one (local) channel: nothing to do
        except grpc.RpcError as e:
            log.warning("could not balance the catalog connections at start-up: %s", e)
        balancer = (
            asyncio.create_task(
                keep_balanced(clients, settings.catalog_target, settings.catalog_balance_seconds)
            )
            if settings.catalog_balance_seconds > 0 and len(clients.catalog_stubs) > 1
            else None
        )
        state = AppState(
            settings=settings,
            clients=clients,
            config=config,
            keys=keys,
            list_answers=ListAnswers(settings.list_cache_bytes),
        )
        app.state.imgapi = state
        mounted = mount(config, settings)
        app.state.mounted = mounted
        state.openapi_document = build_document(mounted.routes)
        reloader: asyncio.Task[None] | None = None
        if keys is not None and settings.auth_keys_reload_seconds > 0:
            reloader = asyncio.create_task(_reload_periodically(keys, settings.auth_keys_reload_seconds))
        try:
            yield
        finally:
            for task in (reloader, balancer):
                if task is not None:
                    task.cancel()
            await clients.close()

    app = Starlette(lifespan=lifespan)
    app.router.routes.append(StarletteRoute("/{path:path}", Dispatcher(app)))
    app.router.default = Dispatcher(app)  # paths that route's pattern cannot match (a decoded newline)
    # An ASGI endpoint with methods=None: the catch-all sees every method and path (IMGAPI 404/405).
    return app


async def _reload_periodically(keys: KeyStore, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(keys.reload)
        except Exception:
            log.exception("auth keys reload failed")
