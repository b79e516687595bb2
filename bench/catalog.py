"""Catalog benchmark: ListImages latency and GetImage throughput over gRPC at 100k images.

    .venv/bin/python bench/catalog.py                     # both engines, 100k images
    .venv/bin/python bench/catalog.py --backend sqlite --images 20000

Loads generated images straight into a fresh database (SQLite file or a throwaway PostgreSQL
database), starts the catalog as its own process (``python -m catalog_service``), and prints:
ListImages p50/p99 for limit=100 and limit=1000 with several filters and with ``account``
scoping (asked as the REST gateway asks: ``page_json_only``), GetImage RPC/s with concurrent
client processes, and the catalog process RSS.
Targets on a 2-core machine: ListImages p50 <= 5 ms (limit 100) and <= 25 ms (limit 1000);
GetImage >= 2,000 RPC/s. Set IMGAPI_CATALOG_LIST_CACHE_BYTES=0 to time every query's SQL (with the
cache, repeated queries are answered from it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2  # noqa: E402

from catalog_service.adapters.db.engine import make_engine, migrate  # noqa: E402
from catalog_service.handlers.operations import CatalogService  # noqa: E402
from catalog_service.settings import CatalogSettings  # noqa: E402
from tests.components import free_port, pg_database, wait_for_port  # noqa: E402

OWNERS = [str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4)) for i in range(200)]
NAMES = [f"base-{i}" for i in range(300)] + [f"node-{i}" for i in range(300)] + ["ubuntu", "centos"]
TYPES = ["zone-dataset", "lx-dataset", "zvol", "other"]
OSES = ["smartos", "linux", "windows", "bsd"]


def generate(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rnd = random.Random(seed)
    for _i in range(n):
        typ = rnd.choice(TYPES)
        state = rnd.choices(["active", "disabled", "unactivated"], [80, 10, 10])[0]
        activated = state != "unactivated"
        rec: dict[str, Any] = {
            "v": 2,
            "uuid": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "owner": rnd.choice(OWNERS),
            "name": rnd.choice(NAMES),
            "version": f"{rnd.randint(1, 20)}.{rnd.randint(0, 9)}.{rnd.randint(0, 9)}",
            "state": state,
            "disabled": state == "disabled",
            "activated": activated,
            "public": rnd.random() < 0.5,
            "type": typ,
            "os": rnd.choice(OSES),
            "files": [
                {
                    "sha1": f"{rnd.getrandbits(160):040x}",
                    "size": rnd.randint(1, 10**10),
                    "compression": "gzip",
                    "contentMD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
                    "mtime": "2025-01-01T00:00:00.000Z",
                    "stor": "local",
                }
            ]
            if activated
            else [],
            "acl": [rnd.choice(OWNERS)] if rnd.random() < 0.3 else [],
            "tags": {"role": rnd.choice(["db", "web", "cache"]), "gen": rnd.randint(1, 5)},
            "description": "generated image " * 3,
            "requirements": {"min_ram": 256, "networks": [{"name": "net0", "description": "public"}]},
        }
        if typ == "zvol":
            rec.update(nic_driver="virtio", disk_driver="virtio", cpu_type="host", image_size=10240)
        if activated:
            day = rnd.randint(0, 364)
            rec["published_at"] = (
                time.strftime(
                    "%Y-%m-%dT%H:%M:%S", time.gmtime(1_700_000_000 + day * 86400 + rnd.randint(0, 86399))
                )
                + f".{rnd.randint(0, 999):03d}Z"
            )
        from catalog_service.domain.records import tags_search_array

        rec["tags_search"] = tags_search_array(rec["tags"])
        yield rec


def load(url: str, n: int) -> None:
    engine = make_engine(url)
    migrate(engine)
    service = CatalogService(CatalogSettings(database_url=url, mode="dc"), engine)
    service.revalidate_if_config_changed()
    batch: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for rec in generate(n):
        batch.append(rec)
        if len(batch) == 5000:
            service.store_many(batch)
            batch = []
    if batch:
        service.store_many(batch)
    print(f"  loaded {n} images in {time.perf_counter() - t0:.1f} s")
    # The steady state: planner statistics exist, and on PostgreSQL the visibility map is set (what
    # autovacuum does after a bulk load; without it every index-only scan visits the table too).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    engine.dispose()


@contextmanager
def catalog_process(url: str, processes: int = 1) -> Iterator[tuple[int, psutil.Process]]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        IMGAPI_CATALOG_BIND=f"127.0.0.1:{port}",
        IMGAPI_CATALOG_DATABASE_URL=url,
        IMGAPI_CATALOG_MODE="dc",
        IMGAPI_CATALOG_PROCESSES=str(processes),
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen([sys.executable, "-m", "catalog_service"], env=env, cwd=ROOT)
    try:
        wait_for_port(port, 60)
        time.sleep(1.0 if processes > 1 else 0)  # let every worker bind
        yield port, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def list_latencies(stub: Any, req: Any, runs: int) -> tuple[float, float, int]:
    stub.ListImages(req)  # warm
    times = []
    page = ""
    for _ in range(runs):
        t0 = time.perf_counter()
        page = stub.ListImages(req).page_json
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), pct(times, 99), len(json.loads(page))


def _get_worker(port: int, uuids: list[str], seconds: float, threads: int, q: Any, mode: str) -> None:
    import threading

    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def run(i: int) -> None:
        # One connection per client thread (a local subchannel pool): with SO_REUSEPORT the kernel
        # spreads connections, not calls, over the catalog processes, as with many real clients.
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        rnd = random.Random(i)
        view = common_pb2.ImageView(include_channels=True)
        while time.perf_counter() < deadline:
            if mode == "baseline":  # no database, no serialization: the cost of a gRPC call itself
                stub.GetServerConfig(catalog_pb2.GetServerConfigRequest())
            else:  # "view": the REST gateway's call; "full": every typed field too
                req = catalog_pb2.GetImageRequest(uuid=rnd.choice(uuids), view=view, view_only=mode == "view")
                stub.GetImage(req)
            counts[i] += 1

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    q.put(sum(counts))


def get_throughput(
    port: int, uuids: list[str], procs: int, threads: int, seconds: float, mode: str = "view"
) -> float:
    # Spawned, not forked: this process already holds gRPC channels, and gRPC does not survive a
    # fork (forked clients fail with "Wrong file descriptor generation").
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    ps = [
        ctx.Process(target=_get_worker, args=(port, uuids, seconds, threads, q, mode)) for _ in range(procs)
    ]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    total = sum(int(q.get()) for _ in ps)
    for p in ps:
        p.join()
    return total / (time.perf_counter() - t0)


def run_backend(name: str, url: str, args: argparse.Namespace) -> None:
    print(f"\n== {name}: {args.images} images")
    load(url, args.images)
    with catalog_process(url, args.processes) as (port, proc):
        stub = catalog_pb2_grpc.CatalogServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        view = common_pb2.ImageView(include_channels=True)
        some = stub.ListImages(catalog_pb2.ListImagesRequest(view=view, limit=1000, view_only=True))
        uuids = [i.uuid for i in some.images]
        account = OWNERS[3]
        scenarios: list[tuple[str, dict[str, Any]]] = [
            ("no filter (state=active)", {}),
            ("state=all sort=desc", {"state": catalog_pb2.ListImagesRequest.STATE_ALL, "descending": True}),
            ("name=~node type=!zvol", {"name": "~node", "type": "!zvol"}),
            ("os=linux tag.role=db", {"os": "linux", "tags": {"role": "db"}}),
            ("owner=<one of 200>", {"owner": OWNERS[5], "state": catalog_pb2.ListImagesRequest.STATE_ALL}),
            ("account=<one of 200>", {"caller": common_pb2.CallerContext(account=account)}),
            ("account + name=~base", {"caller": common_pb2.CallerContext(account=account), "name": "~base"}),
            ("marker page 2", {"marker_uuid": uuids[-1]}),
        ]
        for _label, fields in scenarios:  # warm the database cache once, unmeasured
            stub.ListImages(catalog_pb2.ListImagesRequest(view=view, limit=1000, view_only=True, **fields))
        print(f"  {'ListImages scenario':34} {'limit':>5} {'p50 ms':>8} {'p99 ms':>8} {'rows':>5}")
        worst = {100: 0.0, 1000: 0.0}
        for label, fields in scenarios:
            for limit in (100, 1000):
                # page_json_only: what the gateway asks for (the pre-rendered views as one text)
                req = catalog_pb2.ListImagesRequest(view=view, limit=limit, page_json_only=True, **fields)
                p50, p99, n = list_latencies(stub, req, args.runs)
                worst[limit] = max(worst[limit], p50)
                print(f"  {label:34} {limit:>5} {p50:8.1f} {p99:8.1f} {n:>5}")
        print(
            f"  worst p50: limit 100 {worst[100]:.1f} ms (target <= 5), limit 1000 {worst[1000]:.1f} ms (target <= 25)"
        )
        floor = get_throughput(port, uuids, args.procs, args.threads, args.seconds, mode="baseline")
        rps = get_throughput(port, uuids, args.procs, args.threads, args.seconds, mode="view")
        full = get_throughput(port, uuids, args.procs, args.threads, args.seconds, mode="full")
        print(
            f"  GetImage (view_only, the REST path): {rps:,.0f} RPC/s with {args.procs}x{args.threads} concurrent clients, "
            f"{args.processes} catalog process(es) (target >= 2,000)"
        )
        print(f"  GetImage with every typed field: {full:,.0f} RPC/s")
        print(
            f"  same-run baseline, GetServerConfig (no database): {floor:,.0f} RPC/s; GetImage = {rps / floor:.2f}x"
        )
        procs = [proc, *proc.children(recursive=True)]
        rss = [p.memory_info().rss / 2**20 for p in procs if p.is_running()]
        print(f"  catalog RSS: {', '.join(f'{r:.0f}' for r in rss)} MiB ({len(rss)} process(es))")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--procs", type=int, default=2, help="client processes for GetImage")
    ap.add_argument("--threads", type=int, default=8, help="threads per client process")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--processes", type=int, default=1, help="catalog worker processes (SO_REUSEPORT)")
    args = ap.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            run_backend("SQLite", f"sqlite:///{d}/catalog.db", args)
    if args.backend in ("postgres", "both"):
        with pg_database() as url:
            run_backend("PostgreSQL", url, args)


if __name__ == "__main__":
    main()
