"""The OpenAPI document: valid OpenAPI 3.1, served at /openapi.json, and exactly the route table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from imgapi.v1 import catalog_pb2
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from gateway.openapi.document import build_document, openapi_path, undocumented, unrouted
from gateway.openapi.operations import DOCS
from gateway.routes.compat import favicon
from gateway.routes.table import ROUTES, Op, R, mount
from gateway.settings import GatewaySettings
from tests.gateway.conftest import PUBLIC_CHANNELS, Stack, start_stack

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in METHODS}


def table(routes: Any) -> set[tuple[str, str]]:
    return {(m, openapi_path(r.pattern)) for r in routes for m in r.ops}


@pytest.fixture(scope="module")
def dc_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("openapi-dc"), mode="dc")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def channels_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("openapi-pub"), mode="public", channels=PUBLIC_CHANNELS, admin_uuid=None
    )
    yield stack
    stack.stop()


def test_every_route_of_the_table_is_described_and_nothing_else() -> None:
    assert undocumented() == set()
    assert unrouted() == set()
    assert operations(build_document()) == table(ROUTES)


def test_a_route_without_description_cannot_be_documented() -> None:
    extra = (*ROUTES, R("/nowhere", GET=Op(favicon, ROUTES[0].ops["GET"].auth)))
    assert undocumented(extra) == {("/nowhere", "GET")}
    with pytest.raises(KeyError):
        build_document(extra)


def test_the_full_document_is_valid_openapi_3_1() -> None:
    doc = build_document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    schemathesis.openapi.from_dict(doc)  # schemathesis' own loader accepts it


def test_the_validator_can_fail() -> None:
    doc = build_document()
    doc["paths"]["/ping"]["get"]["responses"] = "nothing"
    with pytest.raises(OpenAPIValidationError):
        validate(doc)


def test_every_operation_declares_imgapi_errors() -> None:
    doc = build_document()
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "message"]
    assert set(error["properties"]) == {"code", "message", "errors"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["responses"]["4XX"] == {"$ref": "#/components/responses/Error"}, (method, path)
            assert op["responses"]["5XX"] == {"$ref": "#/components/responses/Error"}, (method, path)


@pytest.mark.parametrize("which", ["dc_stack", "channels_stack"])
def test_served_document_is_the_mounted_table(which: str, request: pytest.FixtureRequest) -> None:
    stack: Stack = request.getfixturevalue(which)
    r = httpx.get(f"{stack.base_url}/openapi.json", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    validate(doc)
    config = (
        catalog_pb2.ServerConfig(
            mode=stack.mode, channels=[catalog_pb2.Channel(name=c["name"]) for c in PUBLIC_CHANNELS]
        )
        if which == "channels_stack"
        else catalog_pb2.ServerConfig(mode="dc")
    )
    mounted = mount(config, GatewaySettings())
    assert operations(doc) == table(mounted.routes)
    # The configuration decides: CloneImage only in dc mode, ListChannels only with channels.
    assert (("POST", "/images/{uuid}/clone") in operations(doc)) == (which == "dc_stack")
    assert (("GET", "/channels") in operations(doc)) == (which == "channels_stack")
    assert ("GET", "/openapi.json") in operations(doc)
    assert len(DOCS) >= len(operations(doc))
