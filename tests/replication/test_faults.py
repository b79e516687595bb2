"""Replication over links that keep failing, and a chain of three datacenters."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.components import Shape, pg_database
from tests.replication.faulty_proxy import FaultyProxy
from tests.replication.stacks import DC, LUKE, start_dc, start_replicator, wait_for

MIB = 1024 * 1024


def converged(a: DC, b: DC, uuids: list[str]) -> bool:
    for u in uuids:
        s, d = a.get(u), b.get(u)
        if s is None:
            if d is not None:
                return False
            continue
        if d is None or not d.activated:
            return False
        if (d.files[0].sha1, d.description, d.disabled, list(d.acl), d.published_at, d.HasField("icon")) != (
            s.files[0].sha1,
            s.description,
            s.disabled,
            list(s.acl),
            s.published_at,
            s.HasField("icon"),
        ):
            return False
    return True


def test_converges_through_a_link_that_keeps_dropping(tmp_path: Path) -> None:
    a = start_dc(tmp_path, "a")
    b = start_dc(tmp_path, "b")
    cat_proxy = FaultyProxy(a.catalog_target, interval=0.4, budget=(32 * 1024, 256 * 1024), seed=1).start()
    blob_proxy = FaultyProxy(a.blob_target, interval=0.4, budget=(3 * MIB // 2, 4 * MIB), seed=2).start()
    r = start_replicator(tmp_path, b)
    try:
        uuids: list[str] = []
        for i in range(24):
            size = 2 * MIB if i % 8 == 0 else 64 * 1024
            extra = {"origin": uuids[-1]} if uuids and i % 3 else {}
            uuids.append(
                a.publish(os.urandom(size), icon=b"\x89PNG i" if i % 2 else None, name=f"f{i}", **extra)
            )
        job_id = r.create_job(
            name="flaky",
            source_catalog=cat_proxy.target,
            source_blob=blob_proxy.target,
            propagate_deletes=True,
            bandwidth_limit=4 * MIB,
        )
        # changes while the initial sync struggles
        a.update(uuids[3], {"description": "flaky link"})
        a.disable(uuids[4])
        a.add_acl(uuids[5], [LUKE])
        a.delete(uuids[-1])
        wait_for("b converged with a", lambda: converged(a, b, uuids), timeout=90, interval=0.3)
        r.wait_job(job_id, "lag 0", lambda j: j.lag == 0 and j.synced, timeout=30)
        assert cat_proxy.drops >= 2 and blob_proxy.drops >= 3, (cat_proxy.drops, blob_proxy.drops)
        print("drops", cat_proxy.drops, blob_proxy.drops)
        for u in uuids[:-1]:
            assert b.file_bytes(u) == a.file_bytes(u)
        assert r.job(job_id).errors == 0
    finally:
        r.stop()
        cat_proxy.stop()
        blob_proxy.stop()
        b.stop()
        a.stop()


@pytest.fixture
def c_database_url() -> Iterator[str]:
    """DC C's catalog on PostgreSQL (the production database; with CI=true its absence fails)."""
    with pg_database() as url:
        yield url


def test_chain_of_three_datacenters_converges(tmp_path: Path, c_database_url: str) -> None:
    a = start_dc(tmp_path, "a")
    b = start_dc(tmp_path, "b")
    c = start_dc(tmp_path, "c", database_url=c_database_url)
    rb = start_replicator(tmp_path, b, "rep-b")
    rc = start_replicator(tmp_path, c, "rep-c", shape=Shape("production"))  # job store on PostgreSQL
    try:
        uuids: list[str] = []
        for i in range(30):
            extra = {"origin": uuids[-1]} if uuids and i % 5 else {}
            uuids.append(a.publish(f"abc {i}".encode(), icon=b"\x89PNG c" if i % 4 == 0 else None, **extra))
        jb = rb.create_job(name="a-to-b", source_catalog=a.catalog_target, source_blob=a.blob_target)
        jc = rc.create_job(
            name="b-to-c", source_catalog=b.catalog_target, source_blob=b.blob_target, propagate_deletes=True
        )
        wait_for("c converged with a", lambda: converged(a, c, uuids), timeout=60, interval=0.2)
        a.update(uuids[0], {"description": "from A"})
        a.disable(uuids[1])
        wait_for("changes reach c", lambda: converged(a, c, uuids), timeout=30, interval=0.1)
        # b -> c propagates deletes, a -> b does not: a delete at b reaches c only
        leaf = uuids[-1]
        b.delete(leaf)
        wait_for("delete at b reaches c", lambda: c.get(leaf) is None, timeout=30)
        assert a.get(leaf) is not None
        for r, j in ((rb, jb), (rc, jc)):
            job = r.job(j)
            assert job.errors == 0 and not job.conflicts
    finally:
        rc.stop()
        rb.stop()
        c.stop()
        b.stop()
        a.stop()
