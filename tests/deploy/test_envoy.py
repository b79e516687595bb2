"""Envoy in front of real services on loopback: the rendered config validates with the real binary,
the REST surface works through the public listener, native gRPC and the gRPC-JSON transcoded catalog
through the internal listener with the internal token (tests/security/test_front_door.py: what the
public listener refuses).

Stack (module scope): 1 catalog (SQLite) + 1 blob service (local dir) + 2 gateways, each a
``python -m`` child configured by environment variables, behind Envoy rendered from
deploy/envoy/envoy.yaml.tmpl.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
import uuid as uuidlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
import pytest
from google.protobuf import descriptor_pb2
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2

from blob_client import BlobClient
from deploy.envoy.render import DEFAULT_DESCRIPTOR, render
from imgapi_common import internal_auth
from tests.components import envoy_binary
from tests.deploy.procs import (
    JUNK,
    JUNK_MD5,
    SDC,
    TOKEN,
    Envoy,
    spawn_blob,
    spawn_catalog,
    spawn_envoy,
    spawn_gateway,
    wait_stack,
)
from tests.deploy.procs import procs_group as group

pytestmark = pytest.mark.envoy

MIB = 1024 * 1024
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Stack:
    envoy: Envoy
    gateways: list[str]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.envoy.url, headers={"Accept-Version": "*"}, timeout=httpx.Timeout(60.0)
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("envoy")
    with group(tmp) as procs:
        catalog = spawn_catalog(procs, "catalog", data_dir=str(tmp / "catalog"), admin_uuid=SDC)
        blob = spawn_blob(procs, "blob", backend="local", data_dir=str(tmp / "blobs"), fsync="false")
        gateways = [spawn_gateway(procs, f"gw{i}", catalog[1], blob[1]) for i in (1, 2)]
        envoy = spawn_envoy(
            procs, tmp, gateways=[g[1] for g in gateways], catalogs=[catalog[1]], blobs=[blob[1]]
        )
        wait_stack([catalog], [blob], gateways, envoy)
        yield Stack(envoy, [g[1] for g in gateways])


def new_image(c: httpx.Client, **extra: Any) -> str:
    body = {"name": f"e-{uuidlib.uuid4().hex[:8]}", "version": "1.0.0", "os": "smartos"}
    r = c.post("/images", json={**body, "type": "zone-dataset", "owner": SDC, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["uuid"])


# --- config ------------------------------------------------------------------------------------


def test_rendered_config_validates(tmp_path: Path) -> None:
    config = tmp_path / "envoy.yaml"
    config.write_text(
        render(
            gateways=["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"],
            catalogs=["127.0.0.1:8501", "127.0.0.1:8511"],
            blobs=["127.0.0.1:8502", "127.0.0.1:8512"],
            listen="127.0.0.1:8080",
            internal_listen="127.0.0.1:8500",
        )
    )
    out = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK" in out.stdout + out.stderr


def test_render_rejects_bad_addresses() -> None:
    with pytest.raises(ValueError, match="host:port"):
        render(gateways=["nope"], catalogs=["127.0.0.1:1"], blobs=["127.0.0.1:2"])
    with pytest.raises(ValueError, match="at least one"):
        render(gateways=[], catalogs=["127.0.0.1:1"], blobs=["127.0.0.1:2"])
    with pytest.raises(ValueError, match="internal listener"):
        render(
            gateways=["127.0.0.1:1"],
            catalogs=["127.0.0.1:2"],
            blobs=["127.0.0.1:3"],
            listen="0.0.0.0:8080",
            internal_listen="0.0.0.0:8080",
        )


def test_dns_names_make_strict_dns_clusters() -> None:
    text = render(gateways=["gateway:8080"], catalogs=["127.0.0.1:1"], blobs=["blob:8502"])
    assert text.count("type: STRICT_DNS") == 2 and text.count("type: STATIC") == 1


# --- REST through Envoy -----------------------------------------------------------------------


def test_rest_lifecycle(stack: Stack) -> None:
    data = JUNK.read_bytes()
    with stack.client() as c:
        assert c.get("/ping").json()["ping"] == "pong"
        uuid = new_image(c)
        assert c.get(f"/images/{uuid}").json()["state"] == "unactivated"
        r = c.put(f"/images/{uuid}/file?compression=bzip2", content=data)
        assert r.status_code == 200, r.text
        assert r.json()["files"][0]["size"] == len(data)
        assert r.json()["files"][0]["compression"] == "bzip2"
        r = c.post(f"/images/{uuid}?action=activate", json={})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "active"
        r = c.get(f"/images/{uuid}/file")
        assert r.status_code == 200
        assert r.headers["content-md5"] == JUNK_MD5
        assert base64.b64encode(hashlib.md5(r.content).digest()).decode() == JUNK_MD5
        assert r.content == data
        assert c.delete(f"/images/{uuid}").status_code == 204
        r = c.get(f"/images/{uuid}")
        assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"
        # Envoy put a request id on the way in; the gateway echoes it.
        assert r.headers.get("request-id") or r.headers.get("x-request-id")


def test_both_gateways_serve(stack: Stack) -> None:
    """Requests are spread over both gateway replicas (x-server-name is each replica's host name)."""

    def pings(_: int) -> set[str | None]:
        with stack.client() as c:
            return {c.get("/ping").headers.get("x-server-name") for _ in range(10)}

    # Envoy may report a replica healthy a moment before its workers route to it: keep sending
    # (bounded) until both have answered or the deadline passes.
    seen: set[str | None] = set()
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(8) as pool:
        while seen != {"gw1", "gw2"} and time.monotonic() < deadline:
            seen |= set().union(*pool.map(pings, range(16)))
    assert seen == {"gw1", "gw2"}, stack.envoy.host_health()


def test_large_file_streams_both_ways(stack: Stack) -> None:
    """64 MiB up and down through Envoy; Envoy's memory does not grow with the file."""
    size = 64 * MIB
    block = hashlib.sha256(b"imgapi").digest() * (MIB // 32)

    def body() -> Iterator[bytes]:
        for i in range(size // MIB):
            yield i.to_bytes(8, "big") + block[8:]

    md5 = hashlib.md5()
    for piece in body():
        md5.update(piece)
    envoy_ps = psutil.Process(stack.envoy.proc.popen.pid)
    rss_before = envoy_ps.memory_info().rss
    with stack.client() as c:
        uuid = new_image(c)
        r = c.put(
            f"/images/{uuid}/file?compression=none", content=body(), headers={"Content-Length": str(size)}
        )
        assert r.status_code == 200, r.text
        assert r.json()["files"][0]["size"] == size
        got = hashlib.md5()
        n = 0
        with c.stream("GET", f"/images/{uuid}/file") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-length"] == str(size)
            for chunk in resp.iter_raw(MIB):
                got.update(chunk)
                n += len(chunk)
            assert resp.headers["content-md5"] == base64.b64encode(md5.digest()).decode()
        assert n == size and got.digest() == md5.digest()
        # A ranged read passes through too.
        r = c.get(f"/images/{uuid}/file", headers={"Range": f"bytes={5 * MIB}-{5 * MIB + 15}"})
        assert r.status_code == 206 and r.content == (5).to_bytes(8, "big") + block[8:16]
        assert c.delete(f"/images/{uuid}").status_code == 204
    grown = envoy_ps.memory_info().rss - rss_before
    assert grown < 32 * MIB, f"envoy grew by {grown} bytes moving a 64 MiB file: buffering?"


# --- native gRPC through Envoy ----------------------------------------------------------------


def test_native_grpc(stack: Stack) -> None:
    with stack.client() as c:
        uuid = new_image(c)
    with internal_auth.channel(stack.envoy.internal_target, TOKEN) as ch:
        catalog = catalog_pb2_grpc.CatalogServiceStub(ch)
        cfg = catalog.GetServerConfig(catalog_pb2.GetServerConfigRequest(), timeout=10)
        assert cfg.mode == "dc"
        img = catalog.GetImage(
            catalog_pb2.GetImageRequest(uuid=uuid, caller=common_pb2.CallerContext()), timeout=10
        ).image
        assert img.uuid == uuid and img.state == "unactivated"
        with pytest.raises(grpc.RpcError) as e:
            catalog.GetImage(catalog_pb2.GetImageRequest(uuid=str(uuidlib.uuid4())), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        # The blob service: a streamed upload and read over the same (internal) Envoy listener.
        blobs = BlobClient(ch, timeout=30)
        payload = bytes(range(256)) * 8192  # 2 MiB
        info = blobs.upload([payload], expected_size=len(payload))
        assert info.size == len(payload) and info.md5 == hashlib.md5(payload).hexdigest()
        assert b"".join(blobs.read(info.blob_id)) == payload
        assert blobs.delete(info.blob_id)


# --- gRPC-JSON transcoding --------------------------------------------------------------------


def test_transcoded_json(stack: Stack) -> None:
    manifest = {"name": "transcoded", "version": "2.0.0", "os": "smartos", "type": "zone-dataset"}
    manifest["owner"] = SDC
    with httpx.Client(base_url=stack.envoy.internal_url, headers=AUTH, timeout=30) as c:
        r = c.post("/v1/catalog/images", json={"manifestJson": json.dumps(manifest)})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        created: dict[str, Any] = r.json()["image"]
        assert created["name"] == "transcoded" and created["state"] == "unactivated"
        uuid = created["uuid"]

        r = c.get(f"/v1/catalog/images/{uuid}")
        assert r.status_code == 200, r.text
        img = r.json()["image"]
        assert img["uuid"] == uuid and img["owner"] == SDC and img["type"] == "zone-dataset"
        assert img["os"] == "smartos" and img["version"] == "2.0.0"

        # ListImages: typed fields filled for JSON callers too (view_only is the gateway's), the
        # typed query parameters as JSON names them
        r = c.get("/v1/catalog/images", params={"state": "STATE_ALL", "limit": "1000", "name": "transcoded"})
        assert r.status_code == 200, r.text
        listed = [i for i in r.json()["images"] if i["uuid"] == uuid]
        assert len(listed) == 1 and listed[0]["owner"] == SDC and listed[0]["state"] == "unactivated"
        assert (
            listed[0]["type"] == "zone-dataset" and json.loads(listed[0]["viewJson"])["name"] == "transcoded"
        )
        r = c.get("/v1/catalog/images", params={"state": "STATE_ACTIVE", "name": "transcoded"})
        assert r.status_code == 200 and uuid not in {i["uuid"] for i in r.json()["images"]}

        # The same image through the REST surface (the public listener).
        rest = httpx.get(f"{stack.envoy.url}/images/{uuid}", headers={"Accept-Version": "*"}).json()
        assert rest["name"] == "transcoded"

        r = c.get("/v1/catalog/config")
        assert r.status_code == 200 and r.json()["mode"] == "dc"

        # Unknown catalog JSON paths are answered by Envoy, never forwarded raw.
        r = c.get("/v1/catalog/nope")
        assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"

        r = c.delete(f"/v1/catalog/images/{uuid}")
        assert r.status_code == 200, r.text
        assert r.json()["deleted"] is True


def test_transcoded_errors_are_json(stack: Stack) -> None:
    """gRPC errors become a JSON google.rpc.Status body (convert_grpc_status) with the IMGAPI HTTP
    status of the error (a ValidationFailed is a 422, where INVALID_ARGUMENT alone says 400), not the
    generic mapping of its gRPC code; native gRPC answers through the same listener keep theirs.

    Envoy can only render the body when the descriptor set holds the types of the status details
    the catalog sends (google.rpc.ErrorInfo / BadRequest, i.e. google/rpc/error_details.proto).
    """
    with httpx.Client(base_url=stack.envoy.internal_url, headers=AUTH, timeout=30) as c:
        r = c.get(f"/v1/catalog/images/{uuidlib.uuid4()}")
        assert r.status_code == 404, r.text
        bad = {"name": "x", "version": "1", "os": "smartos", "type": "zvol", "owner": SDC}
        r2 = c.post("/v1/catalog/images", json={"manifestJson": json.dumps(bad)})
        assert r2.status_code == 422, r2.text
    assert "imgapi-http-status" not in r2.headers
    assert "google/rpc/error_details.proto" in descriptor_files(DEFAULT_DESCRIPTOR)
    assert r.json()["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    body = r2.json()
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert body["details"][0]["reason"] == "ValidationFailed"
    # native gRPC through the internal listener: the status is the gRPC one, HTTP 200 on the wire
    with internal_auth.channel(stack.envoy.internal_target, TOKEN) as ch:
        stub = catalog_pb2_grpc.CatalogServiceStub(ch)
        with pytest.raises(grpc.RpcError) as ei:
            stub.CreateImage(catalog_pb2.CreateImageRequest(manifest_json=json.dumps(bad)), timeout=30)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def descriptor_files(path: Path) -> set[str]:
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(path.read_bytes())
    return {f.name for f in fds.file}
