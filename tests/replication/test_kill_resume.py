"""SIGKILL the replicator (a ``python -m replication`` subprocess) in the middle of a file; the restarted
one continues the same blob upload from its committed offset and never re-sends the copied bytes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from imgapi.v1 import replication_pb2

from replication.adapters.store import Store
from tests.replication.stacks import process_stub, replicator_process, sha1, start_dc, wait_for

MIB = 1024 * 1024


def test_sigkill_mid_file_resumes_from_committed_offset(tmp_path: Path) -> None:
    a = start_dc(tmp_path, "a")
    b = start_dc(tmp_path, "b", checkpoint_bytes=64 * 1024)
    try:
        data = os.urandom(6 * MIB)
        big = a.publish(data, name="big")
        small = a.publish(b"small", name="small", origin=big)
        with replicator_process(tmp_path, b) as proc:
            stub = process_stub(tmp_path)
            spec = replication_pb2.JobSpec(
                name="slow",
                source_catalog=a.catalog_target,
                source_blob=a.blob_target,
                bandwidth_limit=2 * MIB,
            )
            job_id = stub.CreateJob(replication_pb2.CreateJobRequest(spec=spec), timeout=10).id

            def copying() -> tuple[str, int] | None:
                job = stub.GetJob(replication_pb2.GetJobRequest(id=job_id), timeout=10)
                for p in job.active:
                    if p.image_uuid == big and p.upload_id:
                        off = b.blobs.get_upload(p.upload_id).committed_offset
                        if off >= MIB:
                            return p.upload_id, off
                return None

            upload_id, _ = wait_for("1 MiB of the big file copied", copying, timeout=30)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        # what the blob service kept of the killed stream
        time.sleep(0.3)
        committed = b.blobs.get_upload(upload_id).committed_offset
        assert MIB <= committed < len(data)
        assert b.get(big) is not None and not b.get(big).activated  # type: ignore[union-attr]
        assert b.get(small) is None

        with replicator_process(tmp_path, b):
            stub = process_stub(tmp_path)

            def finished() -> replication_pb2.Job | None:
                j = stub.GetJob(replication_pb2.GetJobRequest(id=job_id), timeout=10)
                return j if j.images_copied == 2 and j.synced else None

            job = wait_for("both images replicated after restart", finished, timeout=60)
            assert b.get(small) is not None
        img = b.get(big)
        assert img is not None and img.state == "active"
        assert img.files[0].sha1 == sha1(data)
        assert b.file_bytes(big) == data
        # the restarted replicator continued the same upload from the committed offset...
        store = Store(f"sqlite:///{tmp_path}/replicator-proc/replication.db")
        try:
            p = store.get_progress(job_id, big)
            assert p is not None and p.status == "done"
            assert p.resumed_from == committed
        finally:
            store.close()
        # ...sending only the missing bytes; the job counts each copied file whole, once
        assert job.bytes_copied == len(data) + len(b"small")
    finally:
        b.stop()
        a.stop()
