"""Catalog fixtures: a real catalog gRPC server on port 0, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import grpc
import pytest
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2

from catalog_service.api.server import create_server
from catalog_service.handlers.operations import CatalogService
from catalog_service.settings import CatalogSettings
from gateway.http.body import parse_json_body
from gateway.http.list_params import admin_fields, fill_list_request
from gateway.http.query import Query
from imgapi_common.acl_channel_rules import check_uuid_list, unknown_channel
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import from_rpc_error
from imgapi_common.json_depth import check_json_depth
from tests.components import pg_database

VADER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
LUKE = "91ba0e64-2547-11e2-a972-df579e5fddb3"
EMPEROR = "a0b6b534-2547-11e2-b758-63a2afd747d1"
SDC = "ba28f844-8cb4-f141-882d-46d6251e6a9f"

_SERVICE = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"]
#: Request fields a test may give as REST query text, per method, and their REST names.
_REST_PARAMS = {
    "ListImages": ("limit", "state", "public", "sort", "marker", "incl_admin_fields"),
    "GetImage": ("incl_admin_fields",),
    "DeleteImage": ("force_all_channels",),
}
#: Request fields a test may give as a REST JSON body, per method.
_REST_BODIES = {"AddImageAcl": "acl_json", "RemoveImageAcl": "acl_json", "ChannelAddImage": "body_json"}
_REST_NAMES = {"incl_admin_fields": "inclAdminFields"}
V2 = common_pb2.ImageView(include_channels=True)


@dataclass
class Catalog:
    stub: catalog_pb2_grpc.CatalogServiceStub
    service: CatalogService
    settings: CatalogSettings
    backend: str

    def call(self, method: str, **fields: Any) -> Any:
        """Call an RPC by name with keyword fields; raise the rebuilt ImgapiError on failure.

        Query parameters may be given as the text a REST client sends (``limit="10"``,
        ``incl_admin_fields="true"``): they are parsed as the gateway parses them (see
        :meth:`_from_rest`)."""
        fn = getattr(self.stub, method)
        req_type = getattr(catalog_pb2, _SERVICE.methods_by_name[method].input_type.name)
        rest = {k: fields.pop(k) for k in _REST_PARAMS.get(method, ()) if isinstance(fields.get(k), str)}
        body_text = fields.pop(_REST_BODIES.get(method, ""), None)
        req = req_type(**fields)
        if rest:
            self._from_rest(method, req, rest)
        if body_text is not None:
            self._from_rest_body(method, req, body_text)
        try:
            return fn(req, timeout=30)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e

    def _from_rest_body(self, method: str, req: Any, text: str) -> None:
        """Fill ``req`` from a REST JSON body as the gateway does (gateway/routes/acl.py, actions.py): a
        body it refuses is refused after load and owner (and, for a channel, cond)."""
        body = parse_json_body(text.encode("utf-8", "surrogatepass"), {"content-type": "application/json"})
        check_json_depth(body.value)
        value = body.value if body.present else None
        try:
            if method == "ChannelAddImage":
                given = isinstance(value, dict) and "channel" in value
                name = value.get("channel") if isinstance(value, dict) else None
                if not isinstance(name, str):
                    raise unknown_channel(name, given=given)
                req.channel = name
            else:
                req.acl.extend(check_uuid_list("acl", value))
        except ImgapiError:
            image = self.call("GetImage", caller=req.caller, uuid=req.uuid).image
            account = req.caller.account if req.caller.account or req.caller.account_present else None
            if account is not None and account != image.owner:
                raise ImgapiError(
                    "NotImageOwner", f"account {account} is not the owner of image {req.uuid}"
                ) from None
            raise

    def _from_rest(self, method: str, req: Any, rest: dict[str, str]) -> None:
        """Fill the typed fields of ``req`` from REST query texts with the gateway's parsers; a
        text they refuse is refused after what precedes it (the channel; GetImage's load)."""
        # "" stands for a parameter not given (what the catalog's raw fields used to mean)
        q = Query(urlencode({_REST_NAMES.get(k, k): v for k, v in rest.items() if v != ""}))
        mode, authenticated = self.settings.mode, req.caller.authenticated
        try:
            if method == "ListImages":
                fill_list_request(req, q, mode, authenticated)
            elif method == "GetImage":
                req.incl_admin_fields = admin_fields(q, mode, authenticated)
            elif method == "DeleteImage":
                req.force_all_channels = bool(q.boolean("force_all_channels"))
        except ImgapiError:
            if method == "ListImages":
                self.call("ResolveChannel", channel=req.caller.channel, write=False)
            elif method == "GetImage":
                self.call("GetImage", caller=req.caller, uuid=req.uuid)
            raise

    def error(self, method: str, **fields: Any) -> ImgapiError:
        with pytest.raises(ImgapiError) as ei:
            self.call(method, **fields)
        return ei.value

    def create(self, manifest: dict[str, Any], account: str = "", channel: str = "") -> dict[str, Any]:
        r = self.call(
            "CreateImage",
            caller=common_pb2.CallerContext(account=account, channel=channel),
            view=V2,
            manifest_json=json.dumps(manifest),
        )
        return dict(json.loads(r.image.view_json))

    def seed(self, record: dict[str, Any]) -> None:
        self.service.store_raw(record)


def caller(account: str = "", channel: str = "", authenticated: bool = False) -> common_pb2.CallerContext:
    return common_pb2.CallerContext(account=account, channel=channel, authenticated=authenticated)


@contextmanager
def running_catalog(database_url: str, backend: str, **settings: Any) -> Iterator[Catalog]:
    cfg = CatalogSettings(bind="127.0.0.1:0", database_url=database_url, **settings)
    server, port, _health, service = create_server(cfg)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Catalog(catalog_pb2_grpc.CatalogServiceStub(channel), service, cfg, backend)
    finally:
        channel.close()
        server.stop(0).wait()
        service.engine.dispose()


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / f'catalog-{uuid.uuid4().hex[:8]}.db'}"
    else:
        with pg_database() as url:
            yield url


BACKENDS = ["sqlite", "postgres"]


def catalog_fixture(**settings: Any) -> Callable[..., Iterator[Catalog]]:
    """A module-scoped fixture running one catalog per backend with these settings."""

    @pytest.fixture(scope="module", params=BACKENDS)
    def _fixture(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Catalog]:
        with (
            database(request.param, tmp_path_factory.mktemp("catalog")) as url,
            running_catalog(url, request.param, **settings) as cat,
        ):
            yield cat

    return _fixture


catalog_dc = catalog_fixture(mode="dc", admin_uuid=SDC)
catalog_public = catalog_fixture(mode="public")
catalog_private = catalog_fixture(mode="private")
catalog_channels = catalog_fixture(
    mode="public",
    channels=[
        {"name": "dev", "description": "development", "default": True},
        {"name": "staging", "description": "staging"},
        {"name": "release", "description": "release"},
    ],
)


def manifest(**over: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "owner": VADER,
        "name": f"img-{uuid.uuid4().hex[:8]}",
        "version": "1.0.0",
        "type": "zone-dataset",
        "os": "smartos",
    }
    m.update(over)
    return m
