"""Real stacks for gateway tests: catalog + blob gRPC servers and the gateway under uvicorn.

Every stack is session-scoped (start-up costs ~1 s); tests create their own images (fresh uuids)
so they do not depend on each other. The seeded fixture records are never modified by tests,
except through explicitly named fixtures.

Every stack runs a replication service too (remote imports are its jobs); the remote-import
settings given to :func:`start_stack` (``remote_allowlist``, ``allow_insecure``, ``datacenter_name``,
``imgapi_url_from_datacenter``, ...) go to it, and to the gateway where it has them as well.

Two shapes: ``embedded`` (SQLite + the local blob directory, what ``imgapi serve`` runs) and
``production`` (PostgreSQL + an S3-protocol server, the replication job store on PostgreSQL too). The dc/public/private stacks run the whole
gateway suite on both.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.server import uvicorn_config
from gateway.settings import GatewaySettings
from tests.components import FIXTURES, SHAPES, S3Endpoint, Shape, blob_settings, free_port

VADER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
LUKE = "91ba0e64-2547-11e2-a972-df579e5fddb3"
EMPEROR = "a0b6b534-2547-11e2-b758-63a2afd747d1"
SDC = "ba28f844-8cb4-f141-882d-46d6251e6a9f"
ZERO = "00000000-0000-0000-0000-000000000000"

PUBLIC_CHANNELS: list[dict[str, Any]] = [
    {"name": "dev", "description": "all development builds", "default": True},
    {"name": "staging", "description": "builds for testing in staging in prep for production release"},
    {"name": "release", "description": "release gold bits"},
]


@dataclass
class Stack:
    """A running gateway + catalog (+ blob) triple."""

    base_url: str
    mode: str
    settings: GatewaySettings
    catalog: Any  # catalog_service.handlers.operations.CatalogService
    tmp: Path
    shape: str = "embedded"
    _stops: list[Callable[[], None]] = field(default_factory=list)
    gateway: uvicorn.Server | None = None

    def wait_idle(self, timeout: float = 30) -> None:
        """Wait until the gateway runs no request (e.g. has finished with a killed client's one)."""
        assert self.gateway is not None
        deadline = time.monotonic() + timeout
        while self.gateway.server_state.tasks:
            assert time.monotonic() < deadline, "the gateway is still running a request"
            time.sleep(0.01)

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def seed(self, records: list[dict[str, Any]]) -> None:
        """Store records in the catalog's stored form, bypassing the API (fixtures README)."""
        for rec in records:
            self.catalog.store_raw(copy.deepcopy(rec))

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()


def _start_catalog(
    tmp: Path, mode: str, channels: list[dict[str, Any]], admin_uuid: str | None, database_url: str
) -> tuple[str, Any, Callable[[], None]]:
    from catalog_service.api.server import create_server
    from catalog_service.settings import CatalogSettings

    settings = CatalogSettings(
        bind="127.0.0.1:0",
        database_url=database_url or f"sqlite:///{tmp}/catalog.db",
        data_dir=tmp,
        mode=mode,  # type: ignore[arg-type]
        channels=channels,  # type: ignore[arg-type]
        admin_uuid=admin_uuid,
        max_workers=8,
    )
    server, port, _health, service = create_server(settings)
    server.start()

    def stop() -> None:
        server.stop(0).wait()
        service.engine.dispose()

    return f"127.0.0.1:{port}", service, stop


def _start_blob(tmp: Path, s3: S3Endpoint | None) -> tuple[str, Callable[[], None]]:
    from blob_service.api.server import create_server

    built = create_server(blob_settings(tmp / "blobs", s3))
    server, port, service = built[0], built[1], built[3]
    server.start()

    def stop() -> None:
        server.stop(0).wait()
        service.stop()

    return f"127.0.0.1:{port}", stop


#: Settings of the replication service's remote imports, given to start_stack like gateway settings.
IMPORT_SETTINGS = (
    "remote_allowlist",
    "allow_insecure",
    "datacenter_name",
    "imgapi_url_from_datacenter",
    "remote_connect_timeout_seconds",
    "remote_timeout_seconds",
    "max_file_size",
    "server_name",
)


def start_replication(
    tmp: Path, catalog_target: str, blob_target: str, database_url: str = "", **settings: Any
) -> tuple[str, Callable[[], None]]:
    """The replication service (its gRPC server, replication jobs and import jobs) in this process."""
    from replication.api.server import create_server
    from replication.settings import ReplicationSettings

    rs = ReplicationSettings(
        **{
            "bind": "127.0.0.1:0",
            "database_url": database_url or f"sqlite:///{tmp}/replication.db",
            "data_dir": tmp,
            "catalog_target": catalog_target,
            "blob_target": blob_target,
            "max_workers": 8,
            **settings,
        }
    )
    server, port, _health, manager, imports, _docker = create_server(rs)
    server.start()
    manager.start_all()

    def stop() -> None:
        server.stop(0).wait()
        imports.close()
        manager.stop_all()
        manager.store.close()

    return f"127.0.0.1:{port}", stop


def _start_gateway(settings: GatewaySettings) -> Callable[[], None]:
    return _start_gateway_server(settings)[1]


def _start_gateway_server(settings: GatewaySettings) -> tuple[uvicorn.Server, Callable[[], None]]:
    server = uvicorn.Server(uvicorn_config(settings, log_level="error"))
    thread = threading.Thread(target=server.run, name=f"gateway-{settings.port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return server, stop


def start_stack(
    tmp: Path,
    *,
    mode: str = "dc",
    channels: list[dict[str, Any]] | None = None,
    admin_uuid: str | None = SDC,
    shape: Shape | None = None,
    replication: bool = True,
    **gateway_settings: Any,
) -> Stack:
    shape = shape or Shape()
    stops: list[Callable[[], None]] = []
    database_url, drop_database = shape.database()
    stops.append(drop_database)
    catalog_target, service, stop_catalog = _start_catalog(
        tmp, mode, channels or [], admin_uuid, database_url
    )
    stops.append(stop_catalog)
    blob_target, stop_blob = _start_blob(tmp, shape.s3)
    stops.append(stop_blob)
    replication_target = ""
    if replication:  # without it the gateway has no replication_target
        replication_db, drop_replication_db = shape.database()
        stops.append(drop_replication_db)
        imports = {k: gateway_settings[k] for k in IMPORT_SETTINGS if k in gateway_settings}
        replication_target, stop_replication = start_replication(
            tmp, catalog_target, blob_target, replication_db, **imports
        )
        stops.append(stop_replication)
    for k in IMPORT_SETTINGS:
        if k not in GatewaySettings.model_fields:
            gateway_settings.pop(k, None)
    port = free_port()
    settings = GatewaySettings(
        host="127.0.0.1",
        port=port,
        catalog_target=catalog_target,
        blob_target=blob_target,
        host_name="imgapi0",
        replication_target=replication_target,
        replication_routes=False,
        **gateway_settings,
    )
    gateway, stop_gateway = _start_gateway_server(settings)
    stops.append(stop_gateway)
    return Stack(f"http://127.0.0.1:{port}", mode, settings, service, tmp, shape.name, stops, gateway)


def load_fixture(name: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())
    return records


@pytest.fixture(scope="session", params=SHAPES)
def dc_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """dc mode, no channels, auth none, dc-test-images.json seeded."""
    stack = start_stack(tmp_path_factory.mktemp("dc"), mode="dc", shape=Shape.of(request, request.param))
    stack.seed(load_fixture("dc-test-images.json"))
    yield stack
    stack.stop()


@pytest.fixture(scope="session", params=SHAPES)
def public_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """public mode with channels dev (default) / staging / release, public-test-images.json seeded."""
    stack = start_stack(
        tmp_path_factory.mktemp("public"),
        mode="public",
        channels=PUBLIC_CHANNELS,
        admin_uuid=None,
        shape=Shape.of(request, request.param),
    )
    stack.seed(load_fixture("public-test-images.json"))
    yield stack
    stack.stop()


@pytest.fixture(scope="session", params=SHAPES)
def private_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """private mode, no channels, auth none."""
    stack = start_stack(
        tmp_path_factory.mktemp("private"),
        mode="private",
        admin_uuid=None,
        shape=Shape.of(request, request.param),
    )
    yield stack
    stack.stop()


@pytest.fixture()
def dc(dc_stack: Stack) -> Iterator[httpx.Client]:
    """A client of the dc stack behaving like the node client (``Accept-Version: *``)."""
    with dc_stack.client(**{"Accept-Version": "*", "Accept": "application/json"}) as c:
        yield c


@pytest.fixture()
def pub(public_stack: Stack) -> Iterator[httpx.Client]:
    with public_stack.client(**{"Accept-Version": "*", "Accept": "application/json"}) as c:
        yield c


@pytest.fixture()
def priv(private_stack: Stack) -> Iterator[httpx.Client]:
    with private_stack.client(**{"Accept-Version": "*", "Accept": "application/json"}) as c:
        yield c


def new_uuid() -> str:
    return str(uuid.uuid4())
