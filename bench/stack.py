"""The black-box IMGAPI benchmark against a fresh ``scripts/run`` stack, in one command.

    .venv/bin/python bench/stack.py PATH/TO/imgapi_bench.py                      # full run
    .venv/bin/python bench/stack.py PATH/TO/imgapi_bench.py --quick --only get,create
    IMGAPI_BENCH_SCRIPT=PATH/TO/imgapi_bench.py .venv/bin/python bench/stack.py --quick

Starts ``scripts/run`` on an empty temporary data directory and free ports, in public mode with
three channels (the configuration the benchmark's published figures were taken in), runs the given
benchmark script against it with ``--server-pid <supervisor> --server-tree``, stops the stack
(SIGINT, as a terminal Ctrl-C would) and prints the figures that survive a noisy machine: server
CPU time per request, ListImages p50s and the RSS of every server process. Arguments after the
script path go to the benchmark unchanged; ``--json-out F`` keeps its JSON (else a temporary file).
``--split`` (anywhere) runs each service in its own process, as production does (for comparison
with the default, where catalog, blob and replication share one). ``IMGAPI_*`` variables pass through
to the stack (e.g. ``IMGAPI_CATALOG_LIST_CACHE_BYTES=0``). The benchmark script is not part of this
repository; give its path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

CHANNELS = [
    {"name": "dev", "description": "all development builds", "default": True},
    {"name": "staging", "description": "builds for testing in staging"},
    {"name": "release", "description": "release builds"},
]


def _start(data_dir: Path, ready: Path, serve_args: list[str]) -> subprocess.Popen[bytes]:
    env = os.environ | {"IMGAPI_CATALOG_MODE": "public", "IMGAPI_CATALOG_CHANNELS": json.dumps(CHANNELS)}
    argv = [str(ROOT / "scripts" / "run"), *serve_args, "--data-dir", str(data_dir), "--port", "0"]
    argv += ["--catalog-port", "0", "--blob-port", "0", "--replication-port", "0", "--ready-file", str(ready)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, start_new_session=True)


def _wait_ready(proc: subprocess.Popen[bytes], ready: Path, timeout: float = 300.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"scripts/run exited with status {proc.returncode} before it was ready")
        if ready.exists() and ready.read_text().strip():
            return ready.read_text().splitlines()[0]
        time.sleep(0.2)
    raise SystemExit(f"scripts/run not ready after {timeout:g}s")


def _ms(x: float) -> str:
    return f"{x:.2f}"


def summarize(d: dict[str, Any]) -> list[str]:
    """The CPU-per-request, ListImages and RSS lines of one benchmark JSON."""
    out: list[str] = []
    phases = d.get("phases", {})
    for r in phases.get("get", {}).get("runs", []):
        out.append(
            f"GetImage      {r['rps']:8.0f} req/s  {_ms(r['server_cpu_pct'] / 100 / r['rps'] * 1000)} ms CPU/request"
        )
    for s in phases.get("create", {}).get("steps", []):
        n = s["created"] or 1
        out.append(
            f"CreateImage   {s['create_rps']:8.0f} req/s  "
            f"{_ms(s['create_meter']['server_cpu_s'] / n * 1000)} ms CPU/request; "
            f"AddImageFile+Activate {_ms(s['file_activate_meter']['server_cpu_s'] / n * 1000)} ms CPU/image"
            f"  ({s['from']}..{s['to']})"
        )
    for p in ("upload", "download"):
        ph = phases.get(p)
        if ph:
            extra = (
                f", {ph.get('server_cpu_s_per_gib_median')} CPU-s/GiB, {ph.get('ratio_to_floor')}x the"
                f" SHA-1+MD5 floor ({ph.get('floor_sha1_md5_mb_s_median')} MB/s)"
                if p == "upload"
                else ""
            )
            out.append(f"{p:<13} {ph['mb_s_median']:8.0f} MB/s{extra}")
    for st in (phases.get("list") or {}).get("steps", []):
        for name, q in st["queries"].items():
            out.append(
                f"ListImages@{st['images']:<6} {name:<24} cold p50 {q['cold_p50_ms']:7.2f} ms"
                f"  warm p50 {q['warm_p50_ms']:7.2f} ms"
            )
    mem = d.get("server_memory") or {}
    if mem:
        out.append("RSS " + json.dumps(mem))
    return out


def main(argv: list[str]) -> int:
    script = os.environ.get("IMGAPI_BENCH_SCRIPT")
    serve_args = [a for a in argv if a == "--split"]  # the stack's own option; the rest is the benchmark's
    argv = [a for a in argv if a != "--split"]
    if argv and argv[0].endswith(".py"):
        script, argv = argv[0], argv[1:]
    if not script:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="imgapi-bench-") as tmp:
        json_out = Path(tmp) / "bench.json"
        if "--json-out" in argv:
            json_out = Path(argv[argv.index("--json-out") + 1])
        else:
            argv = [*argv, "--json-out", str(json_out)]
        ready = Path(tmp) / "ready"
        proc = _start(Path(tmp) / "data", ready, serve_args)
        try:
            url = _wait_ready(proc, ready)
            cmd = [sys.executable, script, url, "--server-pid", str(proc.pid), "--server-tree", *argv]
            status = subprocess.call(cmd, stdout=subprocess.DEVNULL)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
        if status != 0:
            print(f"benchmark exited with status {status}", file=sys.stderr)
        if json_out.exists():
            print("\n".join(summarize(json.loads(json_out.read_text()))))
        return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
