"""Gateway file-transfer benchmark: upload and download MB/s of a large image file through the full
REST path (HTTP client -> gateway -> blob service -> local disk), plus a tus upload.

    .venv/bin/python bench/gateway/files.py              # 1 GiB
    .venv/bin/python bench/gateway/files.py --size-mib 256

Starts the catalog, the blob service and the gateway as separate processes (``python -m ...``) on
loopback, creates an image, then measures ``PUT /images/:uuid/file`` (streamed, with a
Content-Length), ``GET /images/:uuid/file`` twice (the client verifying every byte against the
sha1, then against the MD5 itself), a ranged GET of the second half, and a tus upload of the same
bytes in 64 MiB PATCHes. Prints MB/s (10^6 bytes), the CPU seconds of every process per step, the
peak RSS of each process, and as a same-run baseline the client's own SHA-1 and MD5 speed.
Targets on this machine: upload >= 300 MB/s, download >= 600 MB/s.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.components import free_port, wait_for_port  # noqa: E402

BLOCK = os.urandom(1 << 20)


class PeakRss:
    """Samples the RSS of some processes in a background thread."""

    def __init__(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        self.procs = {k: psutil.Process(p.pid) for k, p in procs.items()}
        self.peak = dict.fromkeys(procs, 0)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for k, p in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    self.peak[k] = max(self.peak[k], p.memory_info().rss)
            time.sleep(0.05)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._t.join()
        return self.peak


def body(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        n = min(len(BLOCK), size - sent)
        yield BLOCK[:n]
        sent += n


def expected_digests(size: int) -> tuple[str, str, dict[str, float]]:
    """SHA-1 (hex) and MD5 (hex) of the body, and the seconds each hash took here (the baseline)."""
    out: dict[str, str] = {}
    took: dict[str, float] = {}
    for name in ("sha1", "md5"):
        h = hashlib.new(name)
        t0 = time.perf_counter()
        for chunk in body(size):
            h.update(chunk)
        took[name] = time.perf_counter() - t0
        out[name] = h.hexdigest()
    return out["sha1"], out["md5"], took


def start(tmp: Path) -> tuple[str, dict[str, subprocess.Popen[bytes]]]:
    cat_port, blob_port, gw_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    py = sys.executable
    procs: dict[str, subprocess.Popen[bytes]] = {}
    procs["catalog"] = subprocess.Popen(
        [py, "-m", "catalog_service"],
        env={
            **env,
            "IMGAPI_CATALOG_BIND": f"127.0.0.1:{cat_port}",
            "IMGAPI_CATALOG_DATABASE_URL": f"sqlite:///{tmp}/catalog.db",
            "IMGAPI_CATALOG_DATA_DIR": str(tmp),
            "IMGAPI_CATALOG_MODE": "dc",
            "IMGAPI_CATALOG_ADMIN_UUID": "ba28f844-8cb4-f141-882d-46d6251e6a9f",
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (tmp / "blobs").mkdir()
    procs["blob"] = subprocess.Popen(
        [py, "-m", "blob_service"],
        env={
            **env,
            "IMGAPI_BLOB_BIND": f"127.0.0.1:{blob_port}",
            "IMGAPI_BLOB_DATA_DIR": str(tmp / "blobs"),
            "IMGAPI_BLOB_LOG_LEVEL": "WARNING",
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(cat_port, 60)
    wait_for_port(blob_port, 60)
    procs["gateway"] = subprocess.Popen(
        [py, "-m", "gateway"],
        env={
            **env,
            "IMGAPI_GATEWAY_PORT": str(gw_port),
            "IMGAPI_GATEWAY_CATALOG_TARGET": f"127.0.0.1:{cat_port}",
            "IMGAPI_GATEWAY_BLOB_TARGET": f"127.0.0.1:{blob_port}",
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(gw_port, 60)
    return f"http://127.0.0.1:{gw_port}", procs


def new_image(c: httpx.Client) -> str:
    r = c.post(
        "/images",
        json={
            "name": "bench",
            "version": str(time.time()),
            "os": "smartos",
            "type": "zone-dataset",
            "owner": "ba28f844-8cb4-f141-882d-46d6251e6a9f",
        },
    )
    r.raise_for_status()
    return str(r.json()["uuid"])


#: Download buffers: big reads (one syscall per ~MiBs) and big hash updates (which release the GIL).
READ_BUFFER = 4 << 20
READ_BUFFERS = 4


def fetch(
    base: str, path: str, headers: dict[str, str], verify: str | None
) -> tuple[int, dict[str, str], int, str]:
    """GET ``path``: (status, headers, body bytes, hex digest ``verify`` of the body or "").

    A plain ``http.client`` connection reads the body with ``readinto`` into a few reused 4 MiB
    buffers, and a second thread hashes each filled buffer while the next one is read, so the
    HTTP parsing and the hashing of the client overlap.
    """
    md5 = verify is not None
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=600)
    try:
        conn.request("GET", path, headers={"Accept-Version": "*", **headers})
        resp = conn.getresponse()
        free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(READ_BUFFERS):
            free.put(bytearray(READ_BUFFER))
        full: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        h = hashlib.new(verify or "md5")

        def hasher() -> None:
            while (item := full.get()) is not None:
                buf, n = item
                h.update(memoryview(buf)[:n])
                free.put(buf)

        t = threading.Thread(target=hasher, daemon=True)
        if md5:
            t.start()
        got = 0
        try:
            while True:
                buf = free.get()
                view = memoryview(buf)
                n = 0
                while n < len(buf):  # fill the buffer: fewer, bigger hash updates
                    k = resp.readinto(view[n:])
                    if not k:
                        break
                    n += k
                got += n
                if md5 and n:
                    full.put((buf, n))
                else:
                    free.put(buf)
                if n < len(buf):
                    break
        finally:
            if md5:
                full.put(None)
                t.join()
        digest = h.hexdigest() if md5 else ""
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, got, digest
    finally:
        conn.close()


def mbps(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:8.1f} MB/s ({seconds:.2f} s)"


class CpuMeter:
    """CPU seconds used by each service process (and this client) since the last call."""

    def __init__(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        self.procs = {k: psutil.Process(p.pid) for k, p in procs.items()}
        self.procs["client"] = psutil.Process()
        self.last = self._now()

    def _now(self) -> dict[str, float]:
        out = {}
        for k, p in self.procs.items():
            t = p.cpu_times()
            out[k] = t.user + t.system
        return out

    def delta(self) -> str:
        now = self._now()
        d = {k: now[k] - self.last[k] for k in now}
        self.last = now
        return "  cpu s: " + " ".join(f"{k}={v:.2f}" for k, v in d.items())


def run(size: int) -> None:
    sha1, md5, hash_s = expected_digests(size)
    content_md5 = base64.b64encode(bytes.fromhex(md5)).decode()
    for name, s in hash_s.items():
        print(f"baseline {name.upper():<5} of the body in this process  {mbps(size, s)}")
    with tempfile.TemporaryDirectory(prefix="imgapi-bench-") as d:
        base, procs = start(Path(d))
        rss = PeakRss(procs)
        cpu = CpuMeter(procs)
        try:
            with httpx.Client(base_url=base, timeout=600, headers={"Accept-Version": "*"}) as c:
                uuid = new_image(c)
                os.sync()  # earlier runs' dirty pages must not be written back during the timing
                cpu.delta()
                t0 = time.perf_counter()
                r = c.put(
                    f"/images/{uuid}/file?compression=none&sha1={sha1}",
                    content=body(size),
                    headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
                )
                up = time.perf_counter() - t0
                r.raise_for_status()
                print(f"upload   PUT /images/:uuid/file      {mbps(size, up)}" + cpu.delta())

                # The client checks every byte against the manifest's sha1 (as imgadm does) and the
                # Content-MD5 header against the body's MD5 known beforehand. Then again with the
                # client hashing MD5 itself: at ~700 MB/s MD5 alone needs most of one of the 2 cores.
                for verify, label in (("sha1", "SHA-1 verified"), ("md5", "MD5 verified by the client")):
                    t0 = time.perf_counter()
                    status, hdrs, got, digest = fetch(base, f"/images/{uuid}/file", {}, verify)
                    down = time.perf_counter() - t0
                    assert status == 200, status
                    assert got == size and hdrs["content-md5"] == content_md5
                    assert digest == (sha1 if verify == "sha1" else md5)
                    print(f"download GET /images/:uuid/file      {mbps(size, down)}  ({label})" + cpu.delta())

                t0 = time.perf_counter()
                status, _, got, _ = fetch(
                    base, f"/images/{uuid}/file", {"Range": f"bytes={size // 2}-"}, None
                )
                rng = time.perf_counter() - t0
                assert status == 206 and got == size - size // 2, (status, got)
                print(f"download Range: bytes=N/2-           {mbps(got, rng)}" + cpu.delta())

                uuid2 = new_image(c)
                cpu.delta()
                tus = {"Tus-Resumable": "1.0.0"}
                t0 = time.perf_counter()
                r = c.post(
                    f"/images/{uuid2}/file/uploads?compression=none",
                    headers={**tus, "Upload-Length": str(size)},
                )
                r.raise_for_status()
                loc = r.headers["location"]
                offset = 0
                part = 64 << 20
                stream = body(size)
                while offset < size:
                    n = min(part, size - offset)
                    chunks: list[bytes] = []
                    while sum(map(len, chunks)) < n:
                        chunks.append(next(stream))
                    r = c.patch(
                        loc,
                        content=iter(chunks),
                        headers={
                            **tus,
                            "Upload-Offset": str(offset),
                            "Content-Type": "application/offset+octet-stream",
                            "Content-Length": str(n),
                        },
                    )
                    r.raise_for_status()
                    offset = int(r.headers["upload-offset"])
                tus_s = time.perf_counter() - t0
                assert c.get(f"/images/{uuid2}").json()["files"][0]["sha1"] == sha1
                print(f"upload   tus (64 MiB PATCHes)        {mbps(size, tus_s)}" + cpu.delta())
        finally:
            peak = rss.stop()
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        for k, v in peak.items():
            print(f"peak RSS {k:<8} {v / 2**20:8.1f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    print(f"file size: {args.size_mib} MiB (MB/s below: 10^6 bytes per second)")
    run(args.size_mib << 20)


if __name__ == "__main__":
    main()
