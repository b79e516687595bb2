"""Blob service throughput and memory, per backend, over gRPC to a service subprocess.

    python -m bench.blob                 # 1 GiB on local and S3 (moto, or IMGAPI_TEST_S3_ENDPOINT)
    python -m bench.blob --size 256MiB --backends local

For each backend: upload and download MB/s (MB = 10^6 bytes) through ``BlobClient``, the peak RSS
growth of the service process (sampled with psutil), and the same-run floor: the time this process
takes to SHA-1 + MD5 + SHA-256 the same bytes serially, as a ratio to the upload time.
Targets on the 2-core dev machine, local backend: upload >= 350 MB/s, download >= 700 MB/s, RSS
growth < 100 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil

from bench.units import parse_size
from blob_client import BlobClient
from imgapi_common.grpc_server import MAX_MESSAGE_BYTES
from tests.components import free_port, wait_for_port

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
POOL_CHUNKS = 64  # distinct 1 MiB random chunks, cycled


@contextmanager
def s3_env() -> Iterator[dict[str, str]]:
    """Settings for a real S3 (IMGAPI_TEST_S3_ENDPOINT) or a moto server started here."""
    bucket = {"IMGAPI_BLOB_S3_BUCKET": f"bench-{os.getpid()}"}
    ext = os.environ.get("IMGAPI_TEST_S3_ENDPOINT")
    if ext:
        yield bucket | {
            "IMGAPI_BLOB_S3_ENDPOINT": ext,
            "IMGAPI_BLOB_S3_ACCESS_KEY": os.environ.get("IMGAPI_TEST_S3_ACCESS_KEY", "minioadmin"),
            "IMGAPI_BLOB_S3_SECRET_KEY": os.environ.get("IMGAPI_TEST_S3_SECRET_KEY", "minioadmin"),
            "IMGAPI_BLOB_S3_SECURE": os.environ.get("IMGAPI_TEST_S3_SECURE", "false"),
        }
        return
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if moto is None:
        raise SystemExit("moto_server not found (pip install 'moto[server]') and no IMGAPI_TEST_S3_ENDPOINT")
    port = free_port()
    proc = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, 30)
        yield bucket | {
            "IMGAPI_BLOB_S3_ENDPOINT": f"127.0.0.1:{port}",
            "IMGAPI_BLOB_S3_ACCESS_KEY": "bench",
            "IMGAPI_BLOB_S3_SECRET_KEY": "bench",
            "IMGAPI_BLOB_S3_SECURE": "false",
        }
    finally:
        proc.terminate()
        proc.wait(10)


class PeakRss(threading.Thread):
    """Samples a process's RSS until stopped; ``peak`` since the last ``reset``."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop_event = threading.Event()

    def reset(self) -> int:
        self.peak = now = int(self.proc.memory_info().rss)
        return now

    def run(self) -> None:
        while not self._stop_event.wait(0.01):
            try:
                self.peak = max(self.peak, int(self.proc.memory_info().rss))
            except psutil.Error:
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Result:
    backend: str
    size: int
    upload_s: float
    download_s: float
    floor_s: float
    rss_base: int
    rss_peak: int
    cpu: dict[str, tuple[float, float]]  # phase -> (service CPU s, this process CPU s)

    def lines(self) -> list[str]:
        mb = self.size / 1e6
        return [
            f"[{self.backend}] {self.size / MIB:.0f} MiB",
            f"  upload    {mb / self.upload_s:8.1f} MB/s  ({self.upload_s:.2f} s)",
            f"  download  {mb / self.download_s:8.1f} MB/s  ({self.download_s:.2f} s)",
            f"  floor     {mb / self.floor_s:8.1f} MB/s  (SHA-1+MD5+SHA-256 serially in one process, "
            f"{self.floor_s:.2f} s); upload time / floor = {self.upload_s / self.floor_s:.2f}",
            f"  service RSS  base {self.rss_base / MIB:.1f} MiB, peak {self.rss_peak / MIB:.1f} MiB, "
            f"growth {(self.rss_peak - self.rss_base) / MIB:.1f} MiB",
            *(
                f"  CPU {phase:<8}  service {svc:.2f} s, client {cli:.2f} s"
                for phase, (svc, cli) in self.cpu.items()
            ),
        ]


def chunks(pool: list[bytes], size: int) -> Iterator[bytes]:
    sent = 0
    i = 0
    while sent < size:
        piece = pool[i % len(pool)]
        if sent + len(piece) > size:
            piece = piece[: size - sent]
        sent += len(piece)
        i += 1
        yield piece


def hash_floor(pool: list[bytes], size: int) -> tuple[float, str]:
    t = time.perf_counter()
    h1, h2, h3 = hashlib.sha1(), hashlib.md5(), hashlib.sha256()
    for piece in chunks(pool, size):
        h1.update(piece)
        h2.update(piece)
        h3.update(piece)
    return time.perf_counter() - t, h1.hexdigest()


def cpu_seconds(service: psutil.Process) -> tuple[float, float]:
    """(service, this process) user+system CPU seconds so far."""
    s, me = service.cpu_times(), psutil.Process().cpu_times()
    return s.user + s.system, me.user + me.system


def since(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    return after[0] - before[0], after[1] - before[1]


def run_backend(backend: str, size: int, pool: list[bytes], extra_env: dict[str, str], crc: bool) -> Result:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="blob-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_BLOB_")}
        env |= {
            "IMGAPI_BLOB_BIND": f"127.0.0.1:{port}",
            "IMGAPI_BLOB_BACKEND": backend,
            "IMGAPI_BLOB_DATA_DIR": str(Path(tmp) / "data"),
            "IMGAPI_BLOB_SPOOL_DIR": tmp,
            "IMGAPI_BLOB_LOG_LEVEL": "WARNING",
        } | extra_env
        proc = subprocess.Popen([sys.executable, "-m", "blob_service"], cwd=ROOT, env=env)
        sampler = PeakRss(proc.pid)
        try:
            wait_for_port(port, 30)
            options = [
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ]
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as ch:
                client = BlobClient(ch, checksum=crc)
                warm = client.upload(chunks(pool, 8 * MIB))  # threads, pools, buffers
                for _ in client.read(warm.blob_id):
                    pass
                client.delete(warm.blob_id)
                sampler.start()
                base = sampler.reset()

                cpu: dict[str, tuple[float, float]] = {}
                os.sync()  # earlier runs' dirty pages must not be written back during the timing
                t, c = time.perf_counter(), cpu_seconds(sampler.proc)
                info = client.upload(chunks(pool, size), expected_size=size)
                upload_s = time.perf_counter() - t
                cpu["upload"] = since(c, cpu_seconds(sampler.proc))

                t, c = time.perf_counter(), cpu_seconds(sampler.proc)
                got = 0
                for data in client.read(info.blob_id):
                    got += len(data)
                download_s = time.perf_counter() - t
                cpu["download"] = since(c, cpu_seconds(sampler.proc))
                if got != size:
                    raise SystemExit(f"downloaded {got} bytes, expected {size}")
                peak = sampler.peak
                floor_s, sha1 = hash_floor(pool, size)
                if sha1 != info.sha1:
                    raise SystemExit(f"service sha1 {info.sha1} != {sha1}")
                client.delete(info.blob_id)
        finally:
            if sampler.is_alive():
                sampler.stop()
            proc.terminate()
            proc.wait(30)
    return Result(backend, size, upload_s, download_s, floor_s, base, peak, cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=1024 * MIB, help="blob size (default 1GiB)")
    ap.add_argument("--backends", default="local,s3", help="comma-separated: local,s3")
    ap.add_argument("--no-crc", action="store_true", help="send chunks without a crc32")
    args = ap.parse_args()
    pool = [os.urandom(MIB) for _ in range(POOL_CHUNKS)]
    for backend in args.backends.split(","):
        if backend == "s3":
            with s3_env() as env:
                result = run_backend(
                    "s3", args.size, pool, {"IMGAPI_BLOB_BACKEND": "s3"} | env, not args.no_crc
                )
        elif backend == "local":
            result = run_backend("local", args.size, pool, {}, not args.no_crc)
        else:
            raise SystemExit(f"unknown backend {backend!r}")
        print("\n".join(result.lines()), flush=True)


if __name__ == "__main__":
    main()
