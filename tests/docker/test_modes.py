"""Server modes and channels: who owns created layers, ``public`` against the mode, the channel
new layers are put in (reused layers keep theirs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.components import Shape
from tests.docker.conftest import Registry0
from tests.docker.stack import Stack, start_stack
from tests.docker.test_import import IMPORT, lines, registry_manifest, uuids_of
from tests.gateway.conftest import PUBLIC_CHANNELS
from tests.replication.stacks import SDC

ZERO = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory, shape: Shape) -> Path:
    return tmp_path_factory.mktemp(f"docker-modes-{shape.name}")


def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url, timeout=60, headers={"Accept-Version": "~2"})


@pytest.fixture(scope="module")
def channels(tmp: Path, shape: Shape) -> Iterator[Stack]:
    s = start_stack(tmp, "ch", shape=shape, mode="public", channels=PUBLIC_CHANNELS)
    yield s
    s.stop()


def test_public_false_on_a_public_server(tmp: Path, shape: Shape, r0: Registry0) -> None:
    s = start_stack(tmp, "pub", shape=shape, mode="public")
    try:
        with client(s) as c:
            msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/base&tag=v1&public=false"))
            assert [m["type"] for m in msgs[:2]] == ["status", "status"]
            assert msgs[-1]["error"] == {"code": "ValidationFailed", "message": "invalid image data: public"}
            assert c.get("/images?state=all").json() == []
    finally:
        s.stop()


def test_private_server(tmp: Path, shape: Shape, r0: Registry0) -> None:
    s = start_stack(tmp, "priv", shape=shape, mode="private")
    try:
        with client(s) as c:
            msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/base&tag=v1"))
            assert msgs[-1]["error"] == {"code": "ValidationFailed", "message": "invalid image data: public"}
            assert c.get("/images?state=all").json() == []
            msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/base&tag=v1&public=false"))
            assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image")
            (uuid,) = uuids_of(registry_manifest(r0.host, "test/base", "v1")[0])
            img = c.get(f"/images/{uuid}").json()
            assert (img["public"], img["owner"]) == (False, ZERO)
    finally:
        s.stop()


def test_dc_owner_is_the_admin(tmp: Path, shape: Shape, r0: Registry0) -> None:
    s = start_stack(tmp, "dc", shape=shape, mode="dc", admin_uuid=SDC)
    try:
        with client(s) as c:
            msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/base&tag=v1&public=false"))
            assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image")
            (uuid,) = uuids_of(registry_manifest(r0.host, "test/base", "v1")[0])
            img = c.get(f"/images/{uuid}").json()
            assert (img["public"], img["owner"]) == (False, SDC)
    finally:
        s.stop()


def test_channels(channels: Stack, r0: Registry0) -> None:
    with client(channels) as c:
        for bad in ("nope", "*"):
            r = c.post(f"{IMPORT}&repo={r0.host}/test/base&channel={bad}")  # checked before anything
            assert r.status_code == 422
            assert r.json() == {
                "code": "ValidationFailed",
                "message": f"unknown channel: {bad}",
                "errors": [{"field": "channel", "code": "Invalid"}],
            }
        assert lines(c.post(f"{IMPORT}&repo={r0.host}/test/base&tag=v1"))[-1]["payload"]
        msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/child&tag=v2s2&channel=staging"))
        assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image")
        base, head = uuids_of(registry_manifest(r0.host, "test/child", "v2s2")[0])
        assert c.get(f"/images/{base}?channel=*").json()["channels"] == ["dev"]
        assert c.get(f"/images/{head}?channel=*").json()["channels"] == ["staging"]
        assert json.loads(msgs[-3]["manifest_str"])["layers"]


def test_oci_manifests_when_enabled(tmp: Path, shape: Shape, r0: Registry0) -> None:
    s = start_stack(tmp, "oci", shape=shape, mode="public", accept_oci=True)
    try:
        with client(s) as c:
            msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/child&tag=oci"))
            assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image"), msgs[-1]
            created = msgs[-3]
            assert (
                json.loads(created["manifest_str"])["mediaType"]
                == "application/vnd.oci.image.manifest.v1+json"
            )
            base, head = uuids_of(registry_manifest(r0.host, "test/child", "v2s2")[0])
            assert created["image_uuid"] == head  # the same layers as the Docker form
            img = c.get(f"/images/{head}").json()
            assert (img["origin"], img["files"][0]["compression"]) == (base, "gzip")
    finally:
        s.stop()


def test_the_replication_service_serves_docker_imports(tmp: Path, shape: Shape, r0: Registry0) -> None:
    """The production wiring: replication.api.server.create_server hosts DockerImport with the
    registry allow-list of its settings (loopback is refused unless listed)."""
    from gateway.settings import GatewaySettings
    from replication.api.server import create_server
    from replication.settings import ReplicationSettings
    from tests.components import free_port
    from tests.gateway.conftest import _start_gateway
    from tests.replication.stacks import start_dc

    dc = start_dc(tmp, "served", shape=shape, mode="public")
    stops = [dc.stop]
    try:
        for allow, expect in (([], "refused"), (["127.0.0.0/8"], "ok")):
            settings = ReplicationSettings(
                bind="127.0.0.1:0",
                data_dir=tmp / f"repl-{expect}",
                catalog_target=dc.catalog_target,
                blob_target=dc.blob_target,
                docker_registry_allowlist=allow,
            )
            server, port, _h, manager, _imports, _docker = create_server(settings)
            server.start()
            stops += [manager.stop_all, lambda server=server: server.stop(0).wait()]  # type: ignore[misc]
            gw_port = free_port()
            stops.append(
                _start_gateway(
                    GatewaySettings(
                        host="127.0.0.1",
                        port=gw_port,
                        catalog_target=dc.catalog_target,
                        blob_target=dc.blob_target,
                        replication_target=f"127.0.0.1:{port}",
                    )
                )
            )
            with httpx.Client(base_url=f"http://127.0.0.1:{gw_port}", timeout=60) as c:
                last = lines(c.post(f"{IMPORT}&repo={r0.host}/test/base&tag=v1"))[-1]
            if expect == "refused":
                assert last["error"]["code"] == "RemoteSourceError"
                assert "IMGAPI_REPLICATION_DOCKER_REGISTRY_ALLOWLIST" in last["error"]["message"]
            else:
                assert last["payload"]["status"].startswith("Status: Downloaded newer image"), last
    finally:
        for stop in reversed(stops):
            stop()
