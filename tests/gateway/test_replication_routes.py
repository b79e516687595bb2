"""Replication jobs through REST (``/replication/jobs``): a real replication service in-process (as
tests/replication does) in front of DC "b", pulling from DC "a" over gRPC, and real gateways on "b"
(``replication_target`` set; auth none and signature)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from imgapi.v1 import catalog_pb2

from gateway.settings import GatewaySettings
from tests.components import free_port
from tests.gateway.conftest import _start_gateway
from tests.gateway.helpers import err
from tests.gateway.test_auth import openssh, signed
from tests.replication.stacks import DC, LUKE, OPERATOR, Replicator, start_dc, start_replicator


@dataclass
class World:
    a: DC
    b: DC
    replicator: Replicator
    url: str  # gateway on b, auth none
    sig_url: str  # gateway on b, auth signature (alice)
    key: ec.EllipticCurvePrivateKey


def _gateway(b: DC, **settings: Any) -> tuple[str, Callable[[], None]]:
    port = free_port()
    stop = _start_gateway(
        GatewaySettings(
            host="127.0.0.1",
            port=port,
            catalog_target=b.catalog_target,
            blob_target=b.blob_target,
            host_name="imgapi-b",
            **settings,
        )
    )
    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("repl-rest")
    a = start_dc(tmp, "a")
    b = start_dc(tmp, "b")
    r = start_replicator(tmp, b)
    key = ec.generate_private_key(ec.SECP256R1())
    url, stop = _gateway(b, replication_target=r.target)
    sig_url, sig_stop = _gateway(
        b, replication_target=r.target, auth_type="signature", auth_keys={"alice": [openssh(key)]}
    )
    try:
        yield World(a, b, r, url, sig_url, key)
    finally:
        sig_stop()
        stop()
        r.stop()
        b.stop()
        a.stop()


@pytest.fixture()
def c(world: World) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.url, headers={"Accept-Version": "*"}, timeout=30) as client:
        yield client


def wait_job(
    c: httpx.Client, job_id: str, what: str, pred: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = c.get(f"/replication/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if pred(job):
            return job
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {job}"
        time.sleep(0.05)


def test_routes_absent_without_replication_target(dc: httpx.Client) -> None:
    for method, path in (
        ("GET", "/replication/jobs"),
        ("POST", "/replication/jobs"),
        ("GET", "/replication/jobs/x"),
        ("DELETE", "/replication/jobs/x"),
    ):
        body = err(dc.request(method, path), 404, "ResourceNotFound")
        assert body["message"] == f"{path} does not exist"


def test_setting_is_host_port() -> None:
    with pytest.raises(ValueError):
        GatewaySettings(replication_target="nope")
    assert GatewaySettings(replication_target="").replication_target == ""


def test_job_lifecycle_status_and_conflicts(world: World, c: httpx.Client) -> None:
    a, b = world.a, world.b
    assert c.get("/replication/jobs").json() == []
    files: dict[str, int] = {}
    for i in range(3):
        data = f"file {i}".encode() * 1000
        files[a.publish(data, name=f"rest-{i}")] = len(data)
    # b already holds one of a's uuids with another owner: a conflict, reported, not overwritten
    clash = a.publish(b"clash bytes", name="clash")
    body = {
        "v": 2,
        "uuid": clash,
        "name": "local",
        "version": "1",
        "owner": LUKE,
        "type": "zone-dataset",
        "os": "smartos",
    }
    b.call(
        "AdminImportImage",
        catalog_pb2.AdminImportImageRequest(caller=OPERATOR, uuid=clash, manifest_json=json.dumps(body)),
    )
    b.attach_file(clash, b"clash bytes")
    b.activate(clash)

    spec = {
        "name": "a-to-b",
        "source_catalog": a.catalog_target,
        "source_blob": a.blob_target,
        "concurrency": 2,
        "filters": {"public": True},
    }
    r = c.post("/replication/jobs", json=spec)
    assert r.status_code == 201, r.text
    job = r.json()
    job_id = job["id"]
    assert job["spec"]["name"] == "a-to-b" and job["spec"]["source_kind"] == "grpc"
    assert job["spec"]["source_catalog"] == a.catalog_target and job["spec"]["concurrency"] == 2
    assert job["spec"]["filters"]["public"] == "true" and job["spec"]["filters"]["tags"] == {}
    assert job["state"] == "running"
    assert set(job) == {
        "id",
        "spec",
        "state",
        "cursor",
        "source_head",
        "lag",
        "bytes_copied",
        "images_copied",
        "errors",
        "last_error",
        "conflicts",
        "active",
        "synced",
        "created_at",
        "updated_at",
    }

    job = wait_job(
        c,
        job_id,
        "initial sync with the conflict",
        lambda j: (
            j["synced"] and j["images_copied"] == len(files) and len(j["conflicts"]) == 1 and j["lag"] == 0
        ),
    )
    assert job["bytes_copied"] == sum(files.values())
    assert job["errors"] == 0 and job["cursor"] == job["source_head"] > 0
    conflict = job["conflicts"][0]
    assert conflict["image_uuid"] == clash and conflict["reason"] == "owner" and conflict["detected_at"]
    for u in files:
        assert b.get(u) is not None and b.get(u).state == "active"  # type: ignore[union-attr]
    assert b.get(clash).owner == LUKE  # type: ignore[union-attr]
    assert [j["id"] for j in c.get("/replication/jobs").json()] == [job_id]

    # pause / resume
    r = c.post(f"/replication/jobs/{job_id}?action=pause")
    assert r.status_code == 200 and r.json()["state"] == "paused", r.text
    # pause answers once the job's runner thread has stopped: nothing is left to copy anything
    assert job_id not in world.replicator.manager.runners
    later = a.publish(b"while paused", name="rest-later")
    assert b.get(later) is None
    r = c.post(f"/replication/jobs/{job_id}?action=resume")
    assert r.status_code == 200 and r.json()["state"] == "running", r.text
    wait_job(c, job_id, "the image published while paused", lambda j: j["images_copied"] == len(files) + 1)
    err(c.post(f"/replication/jobs/{job_id}"), 409, "MissingParameter")
    err(c.post(f"/replication/jobs/{job_id}?action=stop"), 409, "InvalidArgument")

    # delete: the job is gone, the images stay
    assert c.delete(f"/replication/jobs/{job_id}").status_code == 204
    err(c.get(f"/replication/jobs/{job_id}"), 404, "ResourceNotFound")
    err(c.delete(f"/replication/jobs/{job_id}"), 404, "ResourceNotFound")
    err(c.post(f"/replication/jobs/{job_id}?action=pause"), 404, "ResourceNotFound")
    assert c.get("/replication/jobs").json() == []
    assert b.get(later) is not None


def test_operator_only_and_bad_requests(world: World, c: httpx.Client) -> None:
    from tests.gateway.helpers import SDC

    for method, path in (
        ("GET", "/replication/jobs"),
        ("POST", "/replication/jobs"),
        ("GET", "/replication/jobs/x"),
        ("POST", "/replication/jobs/x?action=pause"),
        ("DELETE", "/replication/jobs/x"),
    ):
        sep = "&" if "?" in path else "?"
        r = c.request(method, f"{path}{sep}account={SDC}", json={"name": "x"} if method == "POST" else None)
        err(r, 403, "OperatorOnly")
    err(c.put("/replication/jobs"), 405, "MethodNotAllowedError")
    err(c.post("/replication/jobs"), 422, "InvalidParameter")  # no body
    err(c.post("/replication/jobs", json=[1]), 422, "InvalidParameter")
    err(c.post("/replication/jobs", json={"name": "x", "bogus": 1}), 422, "InvalidParameter", ["bogus"])
    err(
        c.post("/replication/jobs", json={"name": "x", "concurrency": "2"}),
        422,
        "InvalidParameter",
        ["concurrency"],
    )
    err(
        c.post("/replication/jobs", json={"name": "x", "source_kind": "ftp"}),
        422,
        "InvalidParameter",
        ["source_kind"],
    )
    err(
        c.post("/replication/jobs", json={"name": "x", "filters": {"colour": "red"}}),
        422,
        "InvalidParameter",
        ["filters.colour"],
    )
    # the replication service's own validation, answered as it reports it
    r = c.post("/replication/jobs", json={"name": "no-source"})
    assert r.status_code == 422 and r.json()["code"] == "InvalidParameter", r.text
    err(c.get("/replication/jobs/nope"), 404, "ResourceNotFound")
    assert c.get("/replication/jobs").json() == []


def test_rest_source_spec_defaults_to_rest(world: World, c: httpx.Client) -> None:
    r = c.post(
        "/replication/jobs", json={"name": "mirror", "source_url": "http://127.0.0.1:9", "poll_seconds": 60}
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["spec"]["source_kind"] == "rest" and job["spec"]["poll_seconds"] == 60
    assert c.delete(f"/replication/jobs/{job['id']}").status_code == 204


def test_signature_mode_is_strict(world: World) -> None:
    with httpx.Client(base_url=world.sig_url, headers={"Accept-Version": "*"}, timeout=30) as s:
        err(s.get("/replication/jobs"), 401, "UnauthorizedError")
        err(s.get("/replication/jobs/x"), 401, "UnauthorizedError")
        err(s.post("/replication/jobs", json={}), 401, "UnauthorizedError")
        err(s.delete("/replication/jobs/x"), 401, "UnauthorizedError")
        r = s.get("/replication/jobs", headers=signed(world.key, "alice", "ecdsa-sha256"))
        assert r.status_code == 200 and r.json() == [], r.text


def test_replication_service_down(world: World) -> None:
    url, stop = _gateway(world.b, replication_target=f"127.0.0.1:{free_port()}", rpc_timeout_seconds=2)
    try:
        r = httpx.get(f"{url}/replication/jobs", timeout=30)
        assert r.status_code == 503 and r.json()["code"] == "ServiceUnavailableError", r.text
    finally:
        stop()
