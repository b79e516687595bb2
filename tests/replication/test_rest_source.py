"""A job pulling from an IMGAPI REST server (this project's gateway): ListImages with markers +
GetImageFile/GetImageIcon, polled."""

from __future__ import annotations

import os
from pathlib import Path

from imgapi.v1 import replication_pb2

from imgapi_common.ssrf import Allowlist
from replication.adapters.rest_source import RestSource
from replication.handlers.imports.with_origins import import_image_with_origins
from tests.components import Shape
from tests.replication.stacks import LOOPBACK, LUKE, sha1, start_dc, start_gateway, start_replicator, wait_for


def test_rest_source_sync_poll_updates_and_deletes(tmp_path: Path, shape: Shape) -> None:
    a = start_dc(tmp_path, "a", shape=shape)
    b = start_dc(tmp_path, "b", shape=shape)
    r = None
    try:
        url = start_gateway(a)
        chain: list[str] = []
        for i in range(12):
            extra = {"origin": chain[-1]} if chain and i % 4 else {}
            chain.append(
                a.publish(
                    f"rest file {i}".encode() + os.urandom(32),
                    icon=b"\x89PNG rest icon" if i % 3 == 0 else None,
                    name=f"rest-{i}",
                    **extra,
                )
            )
        # pagination with inclusive markers over more than one page is exercised with a small page
        src = RestSource(url, page=5, allowlist=Allowlist.parse(list(LOOPBACK)))
        try:
            listed = [i.uuid for i in src.list_all()]
            assert sorted(listed) == sorted(chain) and len(listed) == len(chain)
        finally:
            src.close()

        r = start_replicator(tmp_path, b, shape=shape)
        job_id = r.create_job(
            name="rest",
            source_kind=replication_pb2.JobSpec.SOURCE_REST,
            source_url=url,
            propagate_deletes=True,
            poll_seconds=0.3,
        )
        r.wait_job(
            job_id, "rest job synced", lambda j: j.synced and j.images_copied == len(chain), timeout=60
        )
        for u in chain:
            s, d = a.get(u), b.get(u)
            assert s is not None and d is not None
            assert (d.published_at, d.origin, d.files[0].sha1, d.state) == (
                s.published_at,
                s.origin,
                s.files[0].sha1,
                s.state,
            )
            assert d.HasField("icon") == s.HasField("icon")
            if s.HasField("icon"):
                assert d.icon.sha1 == sha1(b"\x89PNG rest icon")
        assert b.file_bytes(chain[5]) == a.file_bytes(chain[5])

        a.update(chain[0], {"description": "via REST"})
        a.disable(chain[1])
        a.add_acl(chain[2], [LUKE])
        a.delete(chain[-1])

        def arrived() -> bool:
            x, y, z = b.get(chain[0]), b.get(chain[1]), b.get(chain[2])
            return bool(
                x
                and x.description == "via REST"
                and y
                and y.disabled
                and z
                and list(z.acl) == [LUKE]
                and b.get(chain[-1]) is None
            )

        wait_for("REST source changes in b", arrived, timeout=30)
        job = r.job(job_id)
        assert job.errors == 0 and not job.conflicts

        # the machinery of AdminImportRemoteImage: one image with its missing origins, root first
        c = start_dc(tmp_path, "c", shape=shape)
        try:
            src, dest = RestSource(url, allowlist=Allowlist.parse(list(LOOPBACK))), c.destination()
            try:
                got = import_image_with_origins(src, dest, chain[6])
            finally:
                src.close()
                dest.close()
            assert got.state == "active" and got.published_at == a.get(chain[6]).published_at  # type: ignore[union-attr]
            for u in (chain[4], chain[5]):
                assert c.get(u) is not None and c.get(u).state == "active"  # type: ignore[union-attr]
            assert c.get(chain[3]) is None  # not an origin of chain[6]
            assert c.file_bytes(chain[6]) == a.file_bytes(chain[6])
        finally:
            c.stop()
    finally:
        if r is not None:
            r.stop()
        b.stop()
        a.stop()
