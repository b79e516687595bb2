"""A Docker import survives its service: SIGKILL the replication service (``python -m replication``)
while a layer is half downloaded from a stalling registry; the restarted service pulls it again on
its own, and the layer image ends active with the registry's bytes. The import's record (the
request without credentials, its state) is in the replication database."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from imgapi.v1 import common_pb2, docker_pb2, docker_pb2_grpc, image_pb2

from blob_client import BlobError
from replication.adapters.docker.records import DockerImportRecords
from replication.adapters.store import Store
from replication.domain.docker.layers import layer_uuid
from tests.components import Shape
from tests.docker.fake_registry import (
    MANIFEST_V2,
    FakeRegistry,
    FakeRepo,
    fake_repo,
    sha,
    start_fake_registry,
)
from tests.docker.oci import CREATED
from tests.replication.stacks import DC, LOOPBACK, replicator_process, start_dc, wait_for

SECRET = "s3cret-pw"
AUTH = base64.b64encode(json.dumps({"username": "u", "password": SECRET}).encode()).decode()


@pytest.fixture()
def fake(tmp_path: Path) -> Iterator[FakeRegistry]:
    stalls = fake_repo(f"stalls{os.getpid()}", "stalls", size=3_000_000)
    two = stacked(
        fake_repo(f"base{os.getpid()}", ""), fake_repo(f"top{os.getpid()}", "stalls", size=3_000_000)
    )
    f = start_fake_registry({"fake/stalls": stalls, "fake/two": two})
    try:
        yield f
    finally:
        for repo in f.repos.values():
            repo.release.set()
        f.stop()


def stacked(base: FakeRepo, top: FakeRepo) -> FakeRepo:
    """A repository of ``base``'s layer under ``top``'s (whose fault it keeps)."""
    layers = [base.layer, top.layer]
    config = json.dumps(
        {
            "created": CREATED,
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": [sha(gzip.decompress(r.blobs[r.layer])) for r in (base, top)],
            },
            "history": [
                {"created": CREATED, "created_by": f"/bin/sh -c #(nop) ADD file:{d[7:15]} in / "}
                for d in layers
            ],
        }
    ).encode()
    gz = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": sha(config),
            },
            "layers": [
                {"mediaType": gz, "size": len((base.blobs | top.blobs)[d]), "digest": d} for d in layers
            ],
        }
    ).encode()
    blobs = {d: (base.blobs | top.blobs)[d] for d in layers} | {sha(config): config}
    return FakeRepo(manifest, blobs, top.layer, top.fault)


def docker_channel(tmp: Path) -> grpc.Channel:
    port = (tmp / "replicator-proc" / "port").read_text().strip()
    return grpc.insecure_channel(f"127.0.0.1:{port}")


def active(dc: DC, uuid: str) -> image_pb2.Image | None:
    img = dc.get(uuid)
    return img if img is not None and img.state == "active" else None


def test_killed_import_is_finished_by_the_restarted_service(
    tmp_path: Path, shape: Shape, fake: FakeRegistry
) -> None:
    dc: DC = start_dc(tmp_path, "d", shape=shape)
    db_url, drop_db = shape.database()
    db_url = db_url or f"sqlite:///{tmp_path}/replication.db"
    env = {
        "IMGAPI_REPLICATION_DATABASE_URL": db_url,
        "IMGAPI_REPLICATION_DOCKER_REGISTRY_ALLOWLIST": json.dumps(list(LOOPBACK)),
        # the restarted process takes the import over once the killed one's lease ran out
        "IMGAPI_REPLICATION_LEASE_SECONDS": "1.5",
    }
    repo = fake.repos["fake/stalls"]
    uuid = layer_uuid([repo.layer])
    try:
        with replicator_process(tmp_path, dc, extra_env=env) as proc:
            channel = docker_channel(tmp_path)
            stream = docker_pb2_grpc.DockerImportStub(channel).ImportDockerImage(
                docker_pb2.ImportDockerImageRequest(
                    caller=common_pb2.CallerContext(request_id="req-1"),
                    repo=f"{fake.host}/fake/stalls",
                    tag="v1",
                    public="false",
                    registry_auth=AUTH,
                ),
                timeout=60,
            )
            for event in stream:  # until the stalled layer is known to be half way
                if event.HasField("started"):
                    continue
                msg = json.loads(event.line_json)
                assert msg["type"] != "error", msg
                if msg["payload"].get("status") == "Downloading":
                    break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        channel.close()
        store = Store(db_url)
        try:
            (rec,) = DockerImportRecords(store).all()
            assert rec.state == "running" and rec.credentials
            assert rec.request.repo == f"{fake.host}/fake/stalls" and rec.request.tag == "v1"
            assert rec.request.public == "false" and rec.request.caller.request_id == "req-1"
            assert not rec.request.HasField("registry_auth")
            assert SECRET not in repr(rec) and AUTH not in repr(rec)
        finally:
            store.close()
        assert dc.get(uuid) is None  # nothing is written before every layer is downloaded
        repo.release.set()
        blob_path = f"/v2/fake/stalls/blobs/{repo.layer}"
        first = len([p for p, _ in fake.requests if p == blob_path])
        with replicator_process(tmp_path, dc, extra_env=env):  # no new request
            image = wait_for(
                "the layer image active after the restart",
                lambda: active(dc, uuid),
                timeout=60,
            )
            store = Store(db_url)
            try:
                recs = DockerImportRecords(store)
                wait_for("the record done", lambda: recs.get(rec.id).state == "done")  # type: ignore[union-attr]
            finally:
                store.close()
        assert image.public is False and image.type == "docker"
        (f,) = image.files
        layer = repo.blobs[repo.layer]
        assert f.sha1 == hashlib.sha1(layer).hexdigest() and f.size == len(layer)
        assert dc.file_bytes(uuid) == layer
        # the first pull went with the caller's credentials; the resumed one, which kept none,
        # went anonymously
        pulls = [auth for p, auth in fake.requests if p == blob_path]
        assert first == 1 and pulls == [pulls[0], None] and pulls[0] is not None
    finally:
        dc.stop()
        drop_db()


def test_failed_import_is_recorded_failed(tmp_path: Path, shape: Shape, fake: FakeRegistry) -> None:
    dc = start_dc(tmp_path, "d", shape=shape)
    db_url, drop_db = shape.database()
    db_url = db_url or f"sqlite:///{tmp_path}/replication.db"
    env = {
        "IMGAPI_REPLICATION_DATABASE_URL": db_url,
        "IMGAPI_REPLICATION_DOCKER_REGISTRY_ALLOWLIST": json.dumps(list(LOOPBACK)),
    }
    try:
        with replicator_process(tmp_path, dc, extra_env=env):
            channel = docker_channel(tmp_path)
            stream = docker_pb2_grpc.DockerImportStub(channel).ImportDockerImage(
                docker_pb2.ImportDockerImageRequest(repo=f"{fake.host}/fake/missing", tag="v1"), timeout=60
            )
            last = [json.loads(e.line_json) for e in stream if not e.HasField("started")][-1]
            channel.close()
            assert last["type"] == "error" and last["error"]["code"] == "ResourceNotFound", last
            store = Store(db_url)
            try:
                (rec,) = DockerImportRecords(store).all()
                assert rec.state == "failed" and rec.error.startswith("ResourceNotFound: ")
                assert not rec.credentials
            finally:
                store.close()
    finally:
        dc.stop()
        drop_db()


def test_blob_of_a_killed_import_is_deleted_by_the_process_resuming_it(
    tmp_path: Path, shape: Shape, fake: FakeRegistry
) -> None:
    """The base layer is in the blob service, the top one half way, when the process is killed: no
    image holds the base blob. The process resuming the import deletes it (and downloads again)."""
    dc: DC = start_dc(tmp_path, "d", shape=shape)
    db_url, drop_db = shape.database()
    db_url = db_url or f"sqlite:///{tmp_path}/replication.db"
    env = {
        "IMGAPI_REPLICATION_DATABASE_URL": db_url,
        "IMGAPI_REPLICATION_DOCKER_REGISTRY_ALLOWLIST": json.dumps(list(LOOPBACK)),
        "IMGAPI_REPLICATION_LEASE_SECONDS": "1.5",
    }
    repo = fake.repos["fake/two"]
    base_digest = json.loads(repo.manifest)["layers"][0]["digest"]
    base_uuid, top_uuid = layer_uuid([base_digest]), layer_uuid([base_digest, repo.layer])
    dest = dc.destination()
    blobs = dest.blobs
    try:
        with replicator_process(tmp_path, dc, extra_env=env) as proc:
            channel = docker_channel(tmp_path)
            stream = docker_pb2_grpc.DockerImportStub(channel).ImportDockerImage(
                docker_pb2.ImportDockerImageRequest(repo=f"{fake.host}/fake/two", tag="v1", public="false"),
                timeout=60,
            )
            statuses: dict[str, set[str]] = {}
            for event in stream:  # until the base layer is stored and the top one half way
                if event.HasField("started"):
                    continue
                msg = json.loads(event.line_json)
                assert msg["type"] != "error", msg
                p = msg["payload"]
                statuses.setdefault(p.get("id", ""), set()).add(p.get("status", ""))
                if "Download complete" in statuses.get(
                    base_digest[7:19], set()
                ) and "Downloading" in statuses.get(repo.layer[7:19], set()):
                    break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        channel.close()
        store = Store(db_url)
        try:
            records = DockerImportRecords(store)
            (rec,) = records.all()
            ((layer, left),) = records.blobs(rec.id)
        finally:
            store.close()
        assert layer == base_uuid and blobs.stat(left).size == len(repo.blobs[base_digest])
        assert dc.get(base_uuid) is None  # the blob is held by nothing
        repo.release.set()
        with replicator_process(tmp_path, dc, extra_env=env):
            wait_for("the top layer image active", lambda: active(dc, top_uuid), timeout=60)
        base = active(dc, base_uuid)
        assert base is not None and base.files[0].blob_id != left
        with pytest.raises(BlobError) as gone:
            blobs.stat(left)
        assert gone.value.reason == "BlobNotFound"
    finally:
        dest.close()
        dc.stop()
        drop_db()
