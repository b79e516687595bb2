"""The front door (issue: the public listener bypassed all authentication).

A real stack behind the real Envoy, with HTTP Signature auth on at the gateway: the public listener
serves the IMGAPI REST surface and nothing else (no native gRPC, no reflection, no /v1/catalog JSON,
whatever the caller claims to be); the internal listener and the services' own ports answer only
calls that carry the stack's internal token; services refuse to listen beyond loopback without one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from imgapi.v1 import (
    blob_pb2,
    blob_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    replication_pb2,
    replication_pb2_grpc,
)

from blob_client import BlobClient
from imgapi_common import internal_auth
from tests.components import free_port
from tests.deploy.procs import (
    ROOT,
    SDC,
    TOKEN,
    Envoy,
    procs_group,
    spawn_blob,
    spawn_catalog,
    spawn_envoy,
    spawn_gateway,
    wait_stack,
    wait_until,
)

pytestmark = pytest.mark.envoy

PAYLOAD = b"front door " * 1000
OPERATOR = common_pb2.CallerContext(authenticated=True)


@dataclass
class Door:
    envoy: Envoy
    catalog: str  # the catalog's own gRPC address
    blob: str
    image: str  # uuid of a private, unactivated image with a file
    blob_id: str  # the blob holding that file


def _public_key_line() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode() + " t@test"


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    tmp = tmp_path_factory.mktemp("front-door")
    with procs_group(tmp) as procs:
        catalog = spawn_catalog(procs, "catalog", data_dir=str(tmp / "catalog"), admin_uuid=SDC)
        blob = spawn_blob(procs, "blob", backend="local", data_dir=str(tmp / "blobs"), fsync="false")
        keys = tmp / "keys"
        keys.mkdir()
        (keys / "admin.keys").write_text(_public_key_line() + "\n")
        gateway = spawn_gateway(
            procs, "gw", catalog[1], blob[1], auth_type="signature", auth_keys_dir=str(keys)
        )
        envoy = spawn_envoy(procs, tmp, gateways=[gateway[1]], catalogs=[catalog[1]], blobs=[blob[1]])
        wait_stack([catalog], [blob], [gateway], envoy)
        # The victim: a private, unactivated image with a file, made through the services directly.
        with internal_auth.channel(catalog[1], TOKEN) as ch, internal_auth.channel(blob[1], TOKEN) as bch:
            manifest = f'{{"name": "victim", "version": "1", "os": "smartos", "type": "zone-dataset", "owner": "{SDC}", "public": false}}'
            cat = catalog_pb2_grpc.CatalogServiceStub(ch)
            created = cat.CreateImage(
                catalog_pb2.CreateImageRequest(caller=OPERATOR, manifest_json=manifest), timeout=10
            )
            uuid = created.image.uuid
            info = BlobClient(bch, timeout=30).upload([PAYLOAD], expected_size=len(PAYLOAD))
        yield Door(envoy, catalog[1], blob[1], uuid, info.blob_id)


def _image_exists(door: Door) -> bool:
    with internal_auth.channel(door.catalog, TOKEN) as ch:
        try:
            catalog_pb2_grpc.CatalogServiceStub(ch).GetImage(
                catalog_pb2.GetImageRequest(uuid=door.image, caller=OPERATOR), timeout=10
            )
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            return False
    return True


def _blob_intact(door: Door) -> bool:
    with internal_auth.channel(door.blob, TOKEN) as ch:
        stub = blob_pb2_grpc.BlobServiceStub(ch)
        try:
            data = b"".join(
                m.data for m in stub.ReadBlob(blob_pb2.ReadBlobRequest(blob_id=door.blob_id), timeout=10)
            )
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            return False
    return data == PAYLOAD


def _assert_imgapi_404(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] == "ResourceNotFound"


# --- the public listener ----------------------------------------------------------------------


def test_public_listener_refuses_catalog_json_delete(door: Door) -> None:
    r = httpx.delete(f"{door.envoy.url}/v1/catalog/images/{door.image}", timeout=10)
    _assert_imgapi_404(r)
    # Even with the internal token: the public listener has no route to the services at all.
    r = httpx.delete(
        f"{door.envoy.url}/v1/catalog/images/{door.image}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    _assert_imgapi_404(r)
    assert _image_exists(door)


def test_public_listener_refuses_catalog_json_listing(door: Door) -> None:
    for path in (
        "/v1/catalog/images?state=STATE_ALL&caller.authenticated=true",
        "/V1/Catalog/images?state=all&caller.authenticated=true",
        "/v1/catalog/config",
    ):
        r = httpx.get(f"{door.envoy.url}{path}", timeout=10)
        _assert_imgapi_404(r)
        assert door.image not in r.text


def test_public_listener_refuses_native_catalog_grpc(door: Door) -> None:
    # Whoever the caller claims to be, and even with the right token.
    with internal_auth.channel(door.envoy.target, TOKEN) as ch:
        cat = catalog_pb2_grpc.CatalogServiceStub(ch)
        calls: list[Callable[[], object]] = [
            lambda: cat.DeleteImage(
                catalog_pb2.DeleteImageRequest(uuid=door.image, caller=OPERATOR), timeout=10
            ),
            lambda: cat.ListImages(
                catalog_pb2.ListImagesRequest(caller=OPERATOR, state=catalog_pb2.ListImagesRequest.STATE_ALL),
                timeout=10,
            ),
            lambda: cat.GetServerConfig(catalog_pb2.GetServerConfigRequest(), timeout=10),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as e:
                call()
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value
        health = health_pb2_grpc.HealthStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            list(
                refl.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
                )
            )
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert _image_exists(door)


def test_public_listener_refuses_native_blob_grpc(door: Door) -> None:
    with internal_auth.channel(door.envoy.target, TOKEN) as ch:
        stub = blob_pb2_grpc.BlobServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            list(stub.ReadBlob(blob_pb2.ReadBlobRequest(blob_id=door.blob_id), timeout=10))
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as e:
            stub.DeleteBlob(blob_pb2.DeleteBlobRequest(blob_id=door.blob_id), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert _blob_intact(door)


def test_public_listener_still_serves_rest(door: Door) -> None:
    """The REST surface is there, behind the gateway's own authentication."""
    r = httpx.get(f"{door.envoy.url}/ping", timeout=10)
    assert r.status_code == 200 and r.json()["ping"] == "pong"
    r = httpx.delete(f"{door.envoy.url}/images/{door.image}", timeout=10)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "UnauthorizedError"
    assert _image_exists(door)


# --- the internal listener --------------------------------------------------------------------


def _catalog_call(target: str, token: str) -> catalog_pb2.ServerConfig:
    with internal_auth.channel(target, token) as ch:
        return catalog_pb2_grpc.CatalogServiceStub(ch).GetServerConfig(
            catalog_pb2.GetServerConfigRequest(), timeout=10
        )


def test_internal_listener_with_the_token(door: Door) -> None:
    with internal_auth.channel(door.envoy.internal_target, TOKEN) as ch:
        img = (
            catalog_pb2_grpc.CatalogServiceStub(ch)
            .GetImage(catalog_pb2.GetImageRequest(uuid=door.image, caller=OPERATOR), timeout=10)
            .image
        )
        assert img.uuid == door.image and img.state == "unactivated"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.get(f"{door.envoy.internal_url}/v1/catalog/images/{door.image}", headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["image"]["uuid"] == door.image


@pytest.mark.parametrize("token", ["", "wrong-token-of-the-right-length"])
def test_internal_listener_without_the_token(door: Door, token: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        _catalog_call(door.envoy.internal_target, token)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.delete(f"{door.envoy.internal_url}/v1/catalog/images/{door.image}", headers=headers, timeout=10)
    assert r.status_code == 401, r.text
    r = httpx.get(
        f"{door.envoy.internal_url}/v1/catalog/images?state=STATE_ALL&caller.authenticated=true",
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 401 and door.image not in r.text
    with internal_auth.channel(door.envoy.internal_target, token) as ch:
        with pytest.raises(grpc.RpcError) as e:
            blob_pb2_grpc.BlobServiceStub(ch).DeleteBlob(
                blob_pb2.DeleteBlobRequest(blob_id=door.blob_id), timeout=10
            )
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _image_exists(door) and _blob_intact(door)


# --- the services' own ports ------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "Bearer-but-not-the-token-0123456789"])
def test_services_refuse_callers_without_the_token(door: Door, token: str) -> None:
    with internal_auth.channel(door.catalog, token) as ch:
        cat = catalog_pb2_grpc.CatalogServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            cat.DeleteImage(catalog_pb2.DeleteImageRequest(uuid=door.image, caller=OPERATOR), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as e:
            list(
                reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
                )
            )
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Health checks need no credentials (load balancers, supervisors).
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    with internal_auth.channel(door.blob, token) as ch:
        stub = blob_pb2_grpc.BlobServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            list(stub.ReadBlob(blob_pb2.ReadBlobRequest(blob_id=door.blob_id), timeout=10))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as e:
            stub.DeleteBlob(blob_pb2.DeleteBlobRequest(blob_id=door.blob_id), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # A raw call with the header in another form is refused too.
    with grpc.insecure_channel(door.catalog) as ch:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/imgapi.v1.CatalogService/GetServerConfig", None, None)(
                b"", metadata=(("authorization", TOKEN),), timeout=10
            )
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _image_exists(door) and _blob_intact(door)


def test_services_answer_the_token(door: Door) -> None:
    assert _catalog_call(door.catalog, TOKEN).mode == "dc"


def test_replication_service_refuses_callers_without_the_token(tmp_path: Path) -> None:
    with procs_group(tmp_path) as procs:
        port = free_port()
        env = {
            "IMGAPI_REPLICATION_BIND": f"127.0.0.1:{port}",
            "IMGAPI_REPLICATION_DATA_DIR": str(tmp_path / "repl"),
            internal_auth.TOKEN_SETTING: TOKEN,
        }
        proc = procs.spawn("replication", [sys.executable, "-m", "replication"], env)
        target = f"127.0.0.1:{port}"

        def serving() -> bool:
            try:
                with grpc.insecure_channel(target) as ch:
                    r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
                return bool(r.status == health_pb2.HealthCheckResponse.SERVING)
            except grpc.RpcError:
                return False

        wait_until("replication health", serving, [proc])
        for token in ("", "not-the-token-0123456789"):
            with internal_auth.channel(target, token) as ch:
                with pytest.raises(grpc.RpcError) as e:
                    replication_pb2_grpc.ReplicationServiceStub(ch).ListJobs(
                        replication_pb2.ListJobsRequest(), timeout=10
                    )
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with internal_auth.channel(target, TOKEN) as ch:
            jobs = replication_pb2_grpc.ReplicationServiceStub(ch).ListJobs(
                replication_pb2.ListJobsRequest(), timeout=10
            )
            assert list(jobs.jobs) == []


# --- start-up refusal ---------------------------------------------------------------------------


def _start(module: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")}
    return subprocess.run(
        [sys.executable, "-m", *module], cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("module", "bind_setting"),
    [
        (["catalog_service", "serve"], "IMGAPI_CATALOG_BIND"),
        (["blob_service"], "IMGAPI_BLOB_BIND"),
        (["replication"], "IMGAPI_REPLICATION_BIND"),
    ],
)
def test_services_refuse_a_public_bind_without_a_token(
    tmp_path: Path, module: list[str], bind_setting: str
) -> None:
    prefix = bind_setting.rsplit("_", 1)[0]
    env = {bind_setting: "0.0.0.0:0", f"{prefix}_DATA_DIR": str(tmp_path / "data")}
    out = _start(module, env)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "IMGAPI_INTERNAL_TOKEN" in out.stderr and bind_setting in out.stderr, out.stderr
    assert "Traceback" not in out.stderr, out.stderr


def test_short_tokens_are_refused(tmp_path: Path) -> None:
    out = _start(
        ["catalog_service", "serve"],
        {
            "IMGAPI_CATALOG_BIND": "127.0.0.1:0",
            "IMGAPI_CATALOG_DATA_DIR": str(tmp_path),
            "IMGAPI_INTERNAL_TOKEN": "short",
        },
    )
    assert out.returncode != 0 and "IMGAPI_INTERNAL_TOKEN" in out.stderr, out.stderr


def test_gateway_refuses_to_start_with_a_wrong_token(door: Door, tmp_path: Path) -> None:
    env = {
        "IMGAPI_GATEWAY_HOST": "127.0.0.1",
        "IMGAPI_GATEWAY_PORT": str(free_port()),
        "IMGAPI_GATEWAY_CATALOG_TARGET": door.catalog,
        "IMGAPI_GATEWAY_BLOB_TARGET": door.blob,
        "IMGAPI_INTERNAL_TOKEN": "not-the-token-of-this-stack",
    }
    out = _start(["gateway"], env)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "refused the gateway's credentials" in out.stderr and "IMGAPI_INTERNAL_TOKEN" in out.stderr


def test_embedded_default_protects_its_services(tmp_path: Path) -> None:
    """``imgapi serve``: one command, gRPC on loopback, and a token of its own that callers lack."""
    ready = tmp_path / "ready"
    argv = [
        sys.executable,
        "-m",
        "imgapi_cli.serve",
        "--port",
        "0",
        "--catalog-port",
        "0",
        "--blob-port",
        "0",
    ]
    with procs_group(tmp_path) as procs:
        proc = procs.spawn("serve", [*argv, "--data-dir", str(tmp_path / "var"), "--ready-file", str(ready)])
        wait_until("serve ready", ready.exists, [proc], timeout=90)
        lines = ready.read_text().splitlines()
        rest, grpc_targets = lines[0], [line.removeprefix("grpc://") for line in lines[1:]]
        assert httpx.get(f"{rest}/ping", timeout=10).json()["ping"] == "pong"
        assert grpc_targets and all(t.startswith("127.0.0.1:") for t in grpc_targets), lines
        catalog, blob = grpc_targets[0], grpc_targets[1]
        with pytest.raises(grpc.RpcError) as e:
            _catalog_call(catalog, "")
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with internal_auth.channel(blob, "") as ch, pytest.raises(grpc.RpcError) as e:
            blob_pb2_grpc.BlobServiceStub(ch).DeleteBlob(blob_pb2.DeleteBlobRequest(blob_id="x"), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The REST surface works: the gateway holds the stack's token.
        body = {"name": "e", "version": "1", "os": "smartos", "type": "zone-dataset", "owner": SDC}
        r = httpx.post(f"{rest}/images", json=body, headers={"Accept-Version": "*"}, timeout=10)
        assert r.status_code == 200, r.text
