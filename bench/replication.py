"""Replication benchmark: throughput relative to a raw blob copy, and change-to-arrival latency.

    python -m bench.replication                       # 8 images, 2 GiB in total
    python -m bench.replication --total 256MiB --images 4 --changes 20

Two datacenters run as subprocesses (catalog + blob each, own SQLite database and blob directory,
fsync off on both so that the disk is not what is measured). In the same run, this process:

1. publishes N images totalling ``--total`` bytes at the source;
2. *raw copy*: streams each source blob into the destination blob service with ``BlobClient``
   (ReadBlob -> WriteChunks -> CommitUpload, verified), ``--concurrency`` at a time: the floor.
   It runs before and after the replication and the faster run is the reference;
3. *replication*: a job (in-process runner, same concurrency) pulls every image from cursor 0
   (feed, AdminImportImage, ranged read + resumable upload + commit, attach, activate) until all
   are active at the destination;
4. *latency*: with the job following the feed, ``--changes`` UpdateImage calls at the source, each
   timed until the new description is visible at the destination.

Targets: replication throughput >= 0.7x the raw copy; metadata change arrival <= 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, image_pb2

from bench.units import parse_size
from blob_client import BlobClient
from imgapi_common import deathsig
from replication.adapters.destination import Destination
from replication.adapters.sources import CHANNEL_OPTIONS
from replication.adapters.store import Store
from replication.handlers.jobs.manager import JobManager
from replication.handlers.jobs.spec import JobSpec
from tests.components import free_port

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
OWNER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
OPERATOR = common_pb2.CallerContext()
READ_ALL = common_pb2.CallerContext(channel="*")
VIEW = common_pb2.ImageView(include_channels=True, include_admin_fields=True)


class Datacenter:
    def __init__(self, root: Path, name: str, procs: list[subprocess.Popen[bytes]]) -> None:
        d = root / name
        (d / "blobs").mkdir(parents=True)
        self.catalog_target = f"127.0.0.1:{free_port()}"
        self.blob_target = f"127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "IMGAPI_CATALOG_BIND": self.catalog_target,
            "IMGAPI_CATALOG_DATABASE_URL": f"sqlite:///{d}/catalog.db",
            "IMGAPI_CATALOG_DATA_DIR": str(d),
            "IMGAPI_CATALOG_ADMIN_UUID": "ba28f844-8cb4-f141-882d-46d6251e6a9f",
            "IMGAPI_CATALOG_LOG_LEVEL": "WARNING",
            "IMGAPI_BLOB_BIND": self.blob_target,
            "IMGAPI_BLOB_DATA_DIR": str(d / "blobs"),
            "IMGAPI_BLOB_FSYNC": "false",
            "IMGAPI_BLOB_LOG_LEVEL": "WARNING",
        }
        for module in ("catalog_service", "blob_service"):
            procs.append(
                subprocess.Popen(
                    deathsig.wrap([sys.executable, "-m", module], signal.SIGKILL),
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(d / f"{module}.log", "ab"),  # noqa: SIM115
                )
            )
        self._channels = [
            grpc.insecure_channel(self.catalog_target, options=CHANNEL_OPTIONS),
            grpc.insecure_channel(self.blob_target, options=CHANNEL_OPTIONS),
        ]
        for ch in self._channels:
            try:
                grpc.channel_ready_future(ch).result(timeout=120)
            except grpc.FutureTimeoutError:
                logs = "".join(
                    (d / f"{m}.log").read_text()[-1500:] for m in ("catalog_service", "blob_service")
                )
                raise SystemExit(f"{d.name}: services did not start:\n{logs}") from None
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self._channels[0])
        self.blobs = BlobClient(self._channels[1])

    def publish(self, name: str, data: Iterator[bytes], size: int, sha1: str) -> str:
        body = {"name": name, "version": "1.0.0", "owner": OWNER, "type": "zone-dataset", "os": "smartos"}
        uuid = self.catalog.CreateImage(
            catalog_pb2.CreateImageRequest(caller=OPERATOR, view=VIEW, manifest_json=json.dumps(body))
        ).image.uuid
        info = self.blobs.upload(data, expected_size=size, sha1=sha1)
        f = image_pb2.ImageFile(
            sha1=info.sha1,
            size=info.size,
            compression="none",
            content_md5=info.content_md5,
            blob_id=info.blob_id,
        )
        self.catalog.AttachImageFile(catalog_pb2.AttachImageFileRequest(caller=OPERATOR, uuid=uuid, file=f))
        self.catalog.ActivateImage(catalog_pb2.ImageActionRequest(caller=OPERATOR, uuid=uuid))
        return str(uuid)

    def image(self, uuid: str) -> image_pb2.Image | None:
        try:
            return self.catalog.GetImage(  # type: ignore[no-any-return]
                catalog_pb2.GetImageRequest(caller=READ_ALL, view=VIEW, uuid=uuid)
            ).image
        except grpc.RpcError:
            return None

    def close(self) -> None:
        for ch in self._channels:
            ch.close()


def file_pieces(seed: int, size: int, block: bytes) -> Iterator[bytes]:
    """``size`` bytes: an 8-byte seed then a repeated random block (distinct digests per file)."""
    yield seed.to_bytes(8, "big")
    left = size - 8
    while left > 0:
        piece = block[: min(len(block), left)]
        left -= len(piece)
        yield piece


def digest(seed: int, size: int, block: bytes) -> str:
    h = hashlib.sha1()
    for p in file_pieces(seed, size, block):
        h.update(p)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--total", type=parse_size, default=parse_size("2GiB"), help="bytes over all images")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--changes", type=int, default=20, help="metadata changes timed for latency")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-replication-"))
    procs: list[subprocess.Popen[bytes]] = []
    manager: JobManager | None = None
    try:
        src = Datacenter(root, "src", procs)
        dst = Datacenter(root, "dst", procs)
        size = args.total // args.images
        block = os.urandom(16 * MIB)
        print(f"publishing {args.images} images x {size / MIB:.0f} MiB at the source ...", flush=True)
        uuids = [
            src.publish(f"bench-{i}", file_pieces(i, size, block), size, digest(i, size, block))
            for i in range(args.images)
        ]
        blob_ids = [src.image(u).files[0].blob_id for u in uuids]  # type: ignore[union-attr]
        total = size * args.images

        # 1. raw copy: the same bytes, blob service to blob service
        def raw(blob_id: str) -> str:
            info = dst.blobs.upload(src.blobs.read(blob_id), expected_size=size)
            return info.blob_id

        def raw_copy() -> float:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                copies = list(pool.map(raw, blob_ids))
            elapsed = time.perf_counter() - t0
            for b in copies:
                dst.blobs.delete(b)
            return elapsed

        raw_before = raw_copy()

        # 2. replication from cursor 0
        store = Store(f"sqlite:///{root}/replication.db")
        manager = JobManager(store, lambda: Destination(dst.catalog_target, dst.blob_target))
        t0 = time.perf_counter()
        job_id = manager.create(
            JobSpec(
                name="bench",
                source_catalog=src.catalog_target,
                source_blob=src.blob_target,
                concurrency=args.concurrency,
            )
        )
        while True:
            job = store.get_job(job_id)
            if job is not None and job.images_copied >= args.images:
                break
            time.sleep(0.02)
        repl_s = time.perf_counter() - t0
        for u in uuids:
            img = dst.image(u)
            assert img is not None and img.state == "active", u

        raw_after = raw_copy()  # the faster raw run is the reference (page cache warmth differs)
        raw_s = min(raw_before, raw_after)

        # 3. metadata change -> arrival, the job following the feed
        latencies = []
        for i in range(args.changes):
            u = uuids[i % len(uuids)]
            text = f"change {i} {time.time()}"
            t0 = time.perf_counter()
            src.catalog.UpdateImage(
                catalog_pb2.UpdateImageRequest(
                    caller=OPERATOR, uuid=u, update_json=json.dumps({"description": text})
                )
            )
            while True:
                img = dst.image(u)
                if img is not None and img.description == text:
                    break
                time.sleep(0.002)
            latencies.append(time.perf_counter() - t0)

        mb = total / 1e6
        print(f"data: {args.images} images, {total / MIB:.0f} MiB, concurrency {args.concurrency}")
        print(
            f"raw blob copy:  {raw_s:7.2f} s  {mb / raw_s:8.1f} MB/s "
            f"(best of before/after: {raw_before:.2f} s, {raw_after:.2f} s)"
        )
        print(f"replication:    {repl_s:7.2f} s  {mb / repl_s:8.1f} MB/s")
        ratio = raw_s / repl_s
        print(
            f"replication / raw throughput: {ratio:.2f}x (target >= 0.7x) {'OK' if ratio >= 0.7 else 'MISSED'}"
        )
        lat = sorted(latencies)
        p95 = lat[max(0, int(len(lat) * 0.95) - 1)]
        print(
            f"metadata change -> arrival ({len(lat)} changes): median {statistics.median(lat) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms (target <= 1000 ms) "
            f"{'OK' if lat[-1] <= 1.0 else 'MISSED'}"
        )
    finally:
        if manager is not None:
            manager.stop_all()
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
                p.wait(10)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
