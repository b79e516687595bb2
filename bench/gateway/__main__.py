"""Gateway benchmark over the full REST path: files, then metadata at 100k images.

    .venv/bin/python bench/gateway                 # 1 GiB file, then 100k images
    .venv/bin/python bench/gateway --file-mib 256 --images 20000 --seconds 5
    .venv/bin/python bench/gateway --file-mib 0    # metadata only
    .venv/bin/python bench/gateway/files.py        # files only

First ``bench/gateway/files.py`` on a fresh stack: upload and download MB/s of one large file
(PUT, GET, Range, tus) with the CPU and peak RSS of each process. Then GetImage req/s with
concurrent keep-alive clients, ListImages (limit=1000) latency and the peak RSS of each process at
100k images. Each service runs in its own process (catalog, blob, gateway/uvicorn); the load
generator uses raw keep-alive HTTP/1.1 sockets in separate processes so that the client is not the
bottleneck. Targets on the 2-core machine: upload >= 300 MB/s, download >= 600 MB/s, GetImage
>= 1,500 req/s, ListImages p50 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.components import free_port, wait_for_port  # noqa: E402


def _script(name: str, relpath: str) -> Any:
    """A benchmark script loaded as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relpath)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def process(args: list[str], env: dict[str, str], port: int) -> Iterator[psutil.Process]:
    full = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    proc = subprocess.Popen(args, env=full, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 120)
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def peak_rss_mib(p: psutil.Process) -> float:
    """VmHWM (peak resident set) from /proc, in MiB."""
    try:
        for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return float(p.memory_info().rss) / 1024 / 1024


def cpu_seconds(p: psutil.Process) -> float:
    """CPU time of a process and its children (the catalog's worker processes)."""
    total = 0.0
    for q in [p, *p.children(recursive=True)]:
        try:
            t = q.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


# --- load generator ---------------------------------------------------------------------------------


async def _conn_loop(port: int, paths: list[str], deadline: float, counter: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = random.randrange(len(paths))
    while time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 1
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Version: *\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status}")
        counter[0] += 1
    writer.close()


def _client_proc(port: int, paths: list[str], seconds: float, conns: int, q: Any) -> None:
    async def main() -> int:
        counter = [0]
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_conn_loop(port, paths, deadline, counter) for _ in range(conns)))
        return counter[0]

    q.put(asyncio.run(main()))


_WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Accept-Version"] = "*"})
end
"""


def wrk_rps(port: int, paths: list[str], seconds: float, concurrency: int, threads: int) -> float:
    """req/s measured by wrk (C, ~4x less CPU per request than the Python generator: on 2 cores
    the load generator's CPU is taken from the services)."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_WRK_SCRIPT % ", ".join(f'"{p}"' for p in paths))
        script.flush()
        out = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"no Requests/sec in wrk output:\n{out}")


def get_image_rps(
    port: int, uuids: list[str], seconds: float, concurrency: int, procs: int, load: str = "python"
) -> float:
    paths = ["/ping" if u == "__ping__" else f"/images/{u}" for u in uuids]
    if load == "wrk":
        return wrk_rps(port, paths, seconds, concurrency, procs)
    q: Any = mp.Queue()
    workers = [
        mp.Process(target=_client_proc, args=(port, paths, seconds, max(1, concurrency // procs), q))
        for _ in range(procs)
    ]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    total = int(sum(q.get() for _ in workers))
    for w in workers:
        w.join()
    return total / (time.perf_counter() - t0)


def list_latency(port: int, runs: int) -> tuple[float, float, int]:
    import httpx

    times: list[float] = []
    n = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Accept-Version": "*"}, timeout=60) as c:
        markers = [None]
        r = c.get("/images?limit=1000")
        r.raise_for_status()
        page = r.json()
        markers += [page[-1]["uuid"]] if page else []
        for i in range(runs):
            marker = markers[i % len(markers)]
            url = "/images?limit=1000" + (f"&marker={marker}" if marker else "")
            t0 = time.perf_counter()
            r = c.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            n = len(r.json())
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))], n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file-mib", type=int, default=1024, help="size of the file benchmark (0: skip it)")
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--client-procs", type=int, default=2, help="load generator processes (wrk: threads)")
    ap.add_argument(
        "--load",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator for GetImage: wrk (Debian package) when installed, else Python asyncio",
    )
    ap.add_argument("--list-runs", type=int, default=30)
    ap.add_argument("--catalog-processes", type=int, default=2, help="IMGAPI_CATALOG_PROCESSES")
    # One process per core for each service: a single gateway event loop leaves ~12% of the CPU
    # idle waiting on it (GetImage 1,040-1,334 req/s with 1 process, 1,505-1,598 with 2).
    ap.add_argument("--gateway-processes", type=int, default=2, help="IMGAPI_GATEWAY_PROCESSES")
    args = ap.parse_args()
    if args.load == "auto":
        args.load = "wrk" if shutil.which("wrk") else "python"

    if args.file_mib:
        print(f"== files: {args.file_mib} MiB (MB/s: 10^6 bytes per second)")
        _script("bench_gateway_files", "bench/gateway/files.py").run(args.file_mib << 20)
        print(f"== metadata: {args.images} images")
    cat = _script("bench_catalog", "bench/catalog.py")  # the 100k-image generator and loader
    with tempfile.TemporaryDirectory(prefix="bench-gw-") as tmp:
        url = f"sqlite:///{tmp}/catalog.db"
        print(f"loading {args.images} images into {url}")
        cat.load(url, args.images)
        cport, bport, gport = free_port(), free_port(), free_port()
        with (
            process(
                [sys.executable, "-m", "catalog_service"],
                {
                    "IMGAPI_CATALOG_BIND": f"127.0.0.1:{cport}",
                    "IMGAPI_CATALOG_DATABASE_URL": url,
                    "IMGAPI_CATALOG_MODE": "dc",
                    "IMGAPI_CATALOG_PROCESSES": str(args.catalog_processes),
                },
                cport,
            ) as catalog,
            process(
                [sys.executable, "-m", "blob_service"],
                {"IMGAPI_BLOB_BIND": f"127.0.0.1:{bport}", "IMGAPI_BLOB_DATA_DIR": f"{tmp}/blobs"},
                bport,
            ) as blob,
            process(
                [sys.executable, "-m", "gateway"],
                {
                    "IMGAPI_GATEWAY_PORT": str(gport),
                    "IMGAPI_GATEWAY_CATALOG_TARGET": f"127.0.0.1:{cport}",
                    "IMGAPI_GATEWAY_BLOB_TARGET": f"127.0.0.1:{bport}",
                    "IMGAPI_GATEWAY_PROCESSES": str(args.gateway_processes),
                },
                gport,
            ) as gateway,
        ):
            import httpx

            sample = httpx.get(
                f"http://127.0.0.1:{gport}/images?limit=1000", headers={"Accept-Version": "*"}
            ).json()
            uuids = [i["uuid"] for i in sample]
            p50, p95, n = list_latency(gport, args.list_runs)
            print(
                f"ListImages limit=1000 ({n} images/page, {args.images} stored): "
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"
            )
            ping = get_image_rps(gport, ["__ping__"], 3, args.concurrency, args.client_procs, args.load)
            print(f"GET /ping (gateway alone, no gRPC): {ping:,.0f} req/s")
            procs = {"gateway": gateway, "catalog": catalog, "blob": blob}
            before = {k: cpu_seconds(p) for k, p in procs.items()}
            t0 = time.perf_counter()
            rps = get_image_rps(gport, uuids, args.seconds, args.concurrency, args.client_procs, args.load)
            wall = time.perf_counter() - t0
            busy = {k: (cpu_seconds(p) - before[k]) / wall for k, p in procs.items()}
            print(
                f"GetImage: {rps:,.0f} req/s "
                f"({args.concurrency} keep-alive connections, load generator {args.load} x{args.client_procs}, "
                f"{args.catalog_processes} catalog / {args.gateway_processes} gateway process(es))"
            )
            print("  cores busy meanwhile: " + ", ".join(f"{k} {v:.2f}" for k, v in busy.items()))
            for name, p in (("gateway", gateway), ("catalog", catalog), ("blob", blob)):
                print(f"peak RSS {name}: {peak_rss_mib(p):.0f} MiB")


if __name__ == "__main__":
    main()
