"""Two complete stacks on loopback: a job pulling over gRPC (change feed + ReadBlob)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from imgapi.v1 import replication_pb2
from prometheus_client import REGISTRY

from tests.components import Shape
from tests.replication.stacks import (
    DC,
    EMPEROR,
    LUKE,
    SDC,
    Replicator,
    sha1,
    start_dc,
    start_replicator,
    wait_for,
)

#: Origin chains published at the source: 40 x 5 = 200 images on the embedded shape; 6 x 5 on the
#: production one (every blob goes through the S3 server, several times slower here).
CHAINS = {"embedded": 40, "production": 6}
DEPTH = 5


@pytest.fixture
def pair(tmp_path: Path, shape: Shape) -> Iterator[tuple[DC, DC, Replicator]]:
    """Two DCs and a replicator, on the embedded and on the production shape."""
    a = start_dc(tmp_path, "a", shape=shape)
    b = start_dc(tmp_path, "b", shape=shape)
    r = start_replicator(tmp_path, b, shape=shape)
    try:
        yield a, b, r
    finally:
        r.stop()
        b.stop()
        a.stop()


def publish_chains(dc: DC, chains: int, depth: int, tag: str = "") -> list[list[str]]:
    out = []
    for c in range(chains):
        chain: list[str] = []
        for d in range(depth):
            extra = {"origin": chain[-1]} if chain else {}
            uuid = dc.publish(
                f"{tag}file {c}.{d} ".encode() + os.urandom(48),
                icon=(b"\x89PNG icon " + os.urandom(16)) if (c + d) % 2 == 0 else None,
                name=f"{tag}chain{c}-d{d}",
                **extra,
            )
            chain.append(uuid)
        out.append(chain)
    return out


def assert_same(a: DC, b: DC, uuid: str) -> None:
    src, dst = a.get(uuid), b.get(uuid)
    assert src is not None and dst is not None, uuid
    assert dst.state == src.state
    assert dst.published_at == src.published_at
    assert dst.owner == src.owner
    assert dst.origin == src.origin
    assert dst.files[0].sha1 == src.files[0].sha1
    assert dst.files[0].size == src.files[0].size
    assert dst.files[0].content_md5 == src.files[0].content_md5
    assert dst.HasField("icon") == src.HasField("icon")
    if src.HasField("icon"):
        assert dst.icon.sha1 == src.icon.sha1
        assert dst.icon.content_type == src.icon.content_type
    assert list(dst.acl) == list(src.acl)
    assert dst.disabled == src.disabled
    assert dst.description == src.description


def test_initial_sync_then_follow(pair: tuple[DC, DC, Replicator], shape: Shape) -> None:
    a, b, r = pair
    chains = publish_chains(a, CHAINS[shape.name], DEPTH)
    every = [u for c in chains for u in c]
    unactivated = a.create(name="never-activated")
    job_id = r.create_job(
        name="a-to-b", source_catalog=a.catalog_target, source_blob=a.blob_target, propagate_deletes=True
    )

    wait_for("every image active in b", lambda: len(b.images("active")) == len(every), timeout=90)
    job = r.wait_job(job_id, "job synced", lambda j: j.synced and j.lag == 0)
    for uuid in every:
        assert_same(a, b, uuid)
    assert b.get(unactivated) is None
    assert b.file_bytes(every[7]) == a.file_bytes(every[7])
    assert job.images_copied == len(every)
    assert job.bytes_copied == sum(len(a.file_bytes(u)) for u in every)
    assert job.errors == 0 and not job.conflicts
    assert job.state == "running"
    assert REGISTRY.get_sample_value("imgapi_replication_images_copied_total", {"job": job_id}) == len(every)
    assert REGISTRY.get_sample_value("imgapi_replication_lag", {"job": job_id}) == 0

    # changes at the source arrive while the job follows the feed
    leaf, mid = chains[0][-1], chains[1][2]
    a.update(leaf, {"description": "changed at the source", "tags": {"role": "db"}})
    a.disable(mid)
    a.add_acl(chains[2][0], [LUKE, EMPEROR])
    a.attach_icon(chains[3][1], b"\x89PNG a new icon")
    a.delete(chains[4][-1])
    late = a.publish(b"late file", origin=chains[5][-1], name="late-child")

    def arrived() -> bool:
        bl, bm, bacl, bicon = b.get(leaf), b.get(mid), b.get(chains[2][0]), b.get(chains[3][1])
        return bool(
            bl
            and bl.description == "changed at the source"
            and bm
            and bm.disabled
            and bacl
            and set(bacl.acl) == {LUKE, EMPEROR}
            and bicon
            and bicon.icon.sha1 == sha1(b"\x89PNG a new icon")
            and b.get(chains[4][-1]) is None
            and (bl_late := b.get(late)) is not None
            and bl_late.state == "active"  # imported first, activated once its file is in
        )

    wait_for("source changes in b", arrived, timeout=30)
    for uuid in (leaf, mid, chains[2][0], chains[3][1], late):
        assert_same(a, b, uuid)
    assert b.get(mid).state == "disabled"  # type: ignore[union-attr]
    assert '"role":"db"' in b.get(leaf).view_json.replace(" ", "")  # type: ignore[union-attr]

    # enable again, and the job state survives a restart of the runner (cursor persisted)
    a.disable(mid, False)
    wait_for("enabled in b", lambda: (x := b.get(mid)) is not None and not x.disabled)
    cursor = r.job(job_id).cursor
    assert cursor > 0
    r.stub.PauseJob(replication_pb2.PauseJobRequest(id=job_id), timeout=10)
    assert r.job(job_id).state == "paused"
    a.update(leaf, {"description": "while paused"})
    r.stub.PauseJob(replication_pb2.PauseJobRequest(id=job_id, resume=True), timeout=10)
    wait_for("update after resume", lambda: b.get(leaf).description == "while paused")  # type: ignore[union-attr]
    listed = r.stub.ListJobs(replication_pb2.ListJobsRequest(), timeout=10).jobs
    assert [j.id for j in listed] == [job_id]
    assert r.job(job_id).images_copied == len(every) + 1


def test_conflicts_are_reported_not_overwritten(pair: tuple[DC, DC, Replicator]) -> None:
    a, b, r = pair
    same_uuid_other_owner = a.publish(b"source file 1", name="clash-owner")
    same_uuid_other_file = a.publish(b"source file 2", name="clash-file")
    fine = a.publish(b"source file 3", name="fine")
    # b already has images with those uuids: another owner / another file
    import json

    from imgapi.v1 import catalog_pb2

    from tests.replication.stacks import OPERATOR

    for uuid, owner, data in (
        (same_uuid_other_owner, LUKE, b"source file 1"),
        (same_uuid_other_file, a.get(same_uuid_other_file).owner, b"local other bytes"),  # type: ignore[union-attr]
    ):
        body = {
            "v": 2,
            "uuid": uuid,
            "name": "local",
            "version": "1",
            "owner": owner,
            "type": "zone-dataset",
            "os": "smartos",
        }
        b.call(
            "AdminImportImage",
            catalog_pb2.AdminImportImageRequest(caller=OPERATOR, uuid=uuid, manifest_json=json.dumps(body)),
        )
        b.attach_file(uuid, data)
        b.activate(uuid)
    before = {u: b.get(u).SerializeToString() for u in (same_uuid_other_owner, same_uuid_other_file)}  # type: ignore[union-attr]

    job_id = r.create_job(name="conflicts", source_catalog=a.catalog_target, source_blob=a.blob_target)
    job = r.wait_job(job_id, "conflicts reported", lambda j: len(j.conflicts) == 2 and j.synced)
    assert {c.image_uuid: c.reason for c in job.conflicts} == {
        same_uuid_other_owner: "owner",
        same_uuid_other_file: "file",
    }
    assert b.get(fine) is not None
    for u, raw in before.items():
        assert b.get(u).SerializeToString() == raw  # type: ignore[union-attr]
    # later source changes to a conflicting image do not overwrite it either
    a.update(same_uuid_other_owner, {"description": "new"})
    a.update(fine, {"description": "new"})
    wait_for("fine updated", lambda: b.get(fine).description == "new")  # type: ignore[union-attr]
    assert b.get(same_uuid_other_owner).SerializeToString() == before[same_uuid_other_owner]  # type: ignore[union-attr]


def test_filters_copy_origins_of_selected_images(pair: tuple[DC, DC, Replicator]) -> None:
    a, b, r = pair
    base = a.publish(b"base", name="base-os", owner=SDC)
    mid = a.publish(b"mid", name="middleware", origin=base)
    app = a.publish(b"app", name="my-app", origin=mid, tags={"tier": "web"})
    other = a.publish(b"other", name="my-other-app", tags={"tier": "db"})
    job_id = r.create_job(
        name="filtered",
        source_catalog=a.catalog_target,
        source_blob=a.blob_target,
        filters={"name": "~app", "tags": {"tier": "web"}},
    )
    wait_for("job synced", lambda: r.job(job_id).synced)
    wait_for("app in b", lambda: b.get(app) is not None)
    assert b.get(mid) is not None and b.get(base) is not None  # origins, root first
    assert b.get(other) is None
