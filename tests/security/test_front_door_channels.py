"""Channels and server mode agree everywhere (issue: with channels configured in dc mode,
ChannelAddImage succeeded and the image then vanished from every route).

A dc server has no channels: a catalog configured with both refuses to start, and so does a gateway
in front of a catalog that reports both. With public/private mode, channels work end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc

from tests.components import free_port
from tests.deploy.procs import ROOT, SDC, procs_group, spawn_blob, spawn_catalog, spawn_gateway, wait_stack

CHANNELS = json.dumps(
    [
        {"name": "dev", "description": "development", "default": True},
        {"name": "staging", "description": "staging"},
    ]
)


def _run(argv: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")}
    return subprocess.run(argv, cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("mode", [None, "dc"])
def test_catalog_refuses_channels_in_dc_mode(tmp_path: Path, mode: str | None) -> None:
    env = {
        "IMGAPI_CATALOG_BIND": "127.0.0.1:0",
        "IMGAPI_CATALOG_DATA_DIR": str(tmp_path),
        "IMGAPI_CATALOG_CHANNELS": CHANNELS,
    }
    if mode is not None:
        env["IMGAPI_CATALOG_MODE"] = mode
    out = _run([sys.executable, "-m", "catalog_service", "serve"], env)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "IMGAPI_CATALOG_CHANNELS" in out.stderr and "IMGAPI_CATALOG_MODE=dc" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


class _DcWithChannels(catalog_pb2_grpc.CatalogServiceServicer):  # type: ignore[misc]
    """A catalog (say, an older release) that reports dc mode together with channels."""

    def GetServerConfig(self, request: Any, context: grpc.ServicerContext) -> catalog_pb2.ServerConfig:
        return catalog_pb2.ServerConfig(
            mode="dc", channels=[catalog_pb2.Channel(name="dev", description="d", default=True)]
        )


@pytest.fixture()
def dc_with_channels() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(_DcWithChannels(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)


def test_gateway_refuses_a_dc_catalog_with_channels(dc_with_channels: str) -> None:
    env = {
        "IMGAPI_GATEWAY_HOST": "127.0.0.1",
        "IMGAPI_GATEWAY_PORT": str(free_port()),
        "IMGAPI_GATEWAY_CATALOG_TARGET": dc_with_channels,
        "IMGAPI_GATEWAY_BLOB_TARGET": dc_with_channels,
        "IMGAPI_GATEWAY_STARTUP_TIMEOUT_SECONDS": "10",
    }
    out = _run([sys.executable, "-m", "gateway"], env)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "IMGAPI_CATALOG_CHANNELS" in out.stderr, out.stderr


@pytest.fixture(scope="module")
def channel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("channels")
    with procs_group(tmp) as procs:
        catalog = spawn_catalog(
            procs, "catalog", data_dir=str(tmp / "catalog"), mode="public", channels=CHANNELS
        )
        blob = spawn_blob(procs, "blob", backend="local", data_dir=str(tmp / "blobs"), fsync="false")
        gateway = spawn_gateway(procs, "gw", catalog[1], blob[1])
        wait_stack([catalog], [blob], [gateway], None)
        yield gateway[1]


def test_channel_add_keeps_the_image_visible(channel_server: str) -> None:
    with httpx.Client(base_url=channel_server, headers={"Accept-Version": "*"}, timeout=30) as c:
        assert [ch["name"] for ch in c.get("/channels").json()] == ["dev", "staging"]
        body = {"name": "chan", "version": "1", "os": "smartos", "type": "zone-dataset", "public": True}
        r = c.post("/images", json={**body, "owner": SDC})
        assert r.status_code == 200, r.text
        uuid = r.json()["uuid"]
        assert r.json()["channels"] == ["dev"]
        # Active (a public server lists only active images to anonymous callers).
        assert c.put(f"/images/{uuid}/file?compression=none", content=b"x" * 1000).status_code == 200
        assert c.post(f"/images/{uuid}?action=activate", json={}).status_code == 200
        r = c.post(f"/images/{uuid}?action=channel-add", json={"channel": "staging"})
        assert r.status_code == 200, r.text
        assert r.json()["channels"] == ["dev", "staging"]
        for channel in ("dev", "staging", "*"):
            assert c.get(f"/images/{uuid}?channel={channel}").status_code == 200
            listed = [i["uuid"] for i in c.get(f"/images?channel={channel}").json()]
            assert uuid in listed, channel
        # Deleting from one channel leaves it in the other.
        assert c.delete(f"/images/{uuid}?channel=staging").status_code == 204
        assert c.get(f"/images/{uuid}?channel=staging").status_code == 404
        assert c.get(f"/images/{uuid}?channel=dev").json()["channels"] == ["dev"]


def test_a_dc_server_has_no_channels(tmp_path: Path) -> None:
    with procs_group(tmp_path) as procs:
        catalog = spawn_catalog(procs, "catalog", data_dir=str(tmp_path / "catalog"))
        blob = spawn_blob(procs, "blob", backend="local", data_dir=str(tmp_path / "blobs"), fsync="false")
        gateway = spawn_gateway(procs, "gw", catalog[1], blob[1])
        wait_stack([catalog], [blob], [gateway], None)
        with httpx.Client(base_url=gateway[1], headers={"Accept-Version": "*"}, timeout=30) as c:
            r = c.get("/channels")
            assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"
            body = {"name": "dc", "version": "1", "os": "smartos", "type": "zone-dataset", "owner": SDC}
            uuid = c.post("/images", json=body).json()["uuid"]
            r = c.post(f"/images/{uuid}?action=channel-add", json={"channel": "staging"})
            assert r.status_code == 422, r.text
            assert c.get(f"/images/{uuid}").status_code == 200
            assert uuid in [i["uuid"] for i in c.get("/images?state=all").json()]
