"""Several replication processes share one database: an unfinished Docker import left by a process
that is gone is resumed by exactly one of them, and an import a live process holds is not taken
from it. Two resumers (two servicers, each with its own engine and owner id, as two processes have)
race on the record, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from imgapi.v1 import common_pb2, docker_pb2

from imgapi_common.ssrf import Allowlist
from replication.adapters.destination import Destination
from replication.adapters.docker.records import DockerImportRecords
from replication.adapters.store import Store
from replication.api.docker_servicer import DockerImportServicer
from replication.domain.docker.layers import layer_uuid
from tests.components import Shape
from tests.docker.fake_registry import FakeRegistry, fake_repo, start_fake_registry
from tests.races import race
from tests.replication.stacks import DC, LOOPBACK, start_dc, wait_for

T = TypeVar("T")


@pytest.fixture()
def fake() -> Iterator[FakeRegistry]:
    f = start_fake_registry({"fake/claimed": fake_repo(f"claimed{os.getpid()}", "")})
    try:
        yield f
    finally:
        f.stop()


@pytest.fixture()
def db_url(shape: Shape, tmp_path: Path) -> Iterator[str]:
    url, drop = shape.database()
    try:
        yield url or f"sqlite:///{tmp_path}/replication.db"
    finally:
        drop()


def gone(records: DockerImportRecords) -> DockerImportRecords:
    """``records`` as written by a process whose lease ran out an hour ago."""
    records.lease = dataclasses.replace(records.lease, clock=lambda: time.time() - 3600)
    return records


def servicer(dc: DC, store: Store) -> DockerImportServicer:
    def destination(caller: common_pb2.CallerContext) -> Destination:
        return Destination(dc.catalog_target, dc.blob_target, caller=caller)

    return DockerImportServicer(
        destination, Allowlist.parse(list(LOOPBACK)), records=DockerImportRecords(store)
    )


def test_each_left_record_is_claimed_once(db_url: str) -> None:
    stores = [Store(db_url) for _ in range(3)]
    try:
        left = gone(DockerImportRecords(stores[0]))
        ids = [left.start(docker_pb2.ImportDockerImageRequest(repo=f"r/x{i}", tag="v1")) for i in range(20)]
        a, b = DockerImportRecords(stores[1]), DockerImportRecords(stores[2])
        assert {r.id for r in a.unfinished()} == set(ids)
        got = race(lambda: [a.claim(i) for i in ids], lambda: [b.claim(i) for i in ids])
        assert [x + y for x, y in zip(*got, strict=True)] == [1] * len(ids)
        assert a.unfinished() == [] and b.unfinished() == []  # claimed: now held by a live process
        held = a.start(docker_pb2.ImportDockerImageRequest(repo="r/live", tag="v1"))
        assert not b.claim(held)
        assert a.lease.renew() == sum(got[0]) + 1
    finally:
        for s in stores:
            s.close()


def test_two_resumers_pull_a_left_import_once(
    tmp_path: Path, shape: Shape, db_url: str, fake: FakeRegistry
) -> None:
    dc = start_dc(tmp_path, "d", shape=shape)
    stores = [Store(db_url) for _ in range(3)]
    services: list[DockerImportServicer] = []
    try:
        req = docker_pb2.ImportDockerImageRequest(repo=f"{fake.host}/fake/claimed", tag="v1", public="false")
        left = gone(DockerImportRecords(stores[0])).start(req)
        live = DockerImportRecords(stores[0]).start(req)  # a live process's import, lease held
        services = [servicer(dc, stores[1]), servicer(dc, stores[2])]
        started = race(*(s.resume_unfinished for s in services))
        threads = [t for ts in started for t in ts]
        assert len(threads) == 1
        for t in threads:
            t.join(60)
        repo = fake.repos["fake/claimed"]
        uuid = layer_uuid([repo.layer])
        image = wait_for("the layer image", lambda: dc.get(uuid), timeout=30)
        assert image.state == "active" and dc.file_bytes(uuid) == repo.blobs[repo.layer]
        pulls = [p for p, _ in fake.requests if p == f"/v2/fake/claimed/blobs/{repo.layer}"]
        assert len(pulls) == 1
        records = DockerImportRecords(stores[1])
        assert records.get(left).state == "done"  # type: ignore[union-attr]
        assert records.get(live).state == "running"  # type: ignore[union-attr]
    finally:
        for s in services:
            s.stop()
        for store in stores:
            store.close()
        dc.stop()
