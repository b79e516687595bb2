"""``python -m imgapi_cli.health_probe``: wait until services answer their health checks.

    python -m imgapi_cli.health_probe --grpc 127.0.0.1:8501 --grpc 127.0.0.1:8502 --http URL/ping

Polls every target (gRPC health check ``SERVING``; HTTP ``200``) until all of them pass, then exits
0; after ``--timeout`` seconds it exits 1 and names the ones still failing on stderr. ``imgapi
serve`` runs it as a short-lived child so that the long-running supervisor never imports gRPC or
an HTTP client (about 40 MiB of resident memory it would keep for the stack's lifetime).
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def grpc_healthy(target: str) -> bool:
    try:
        with grpc.insecure_channel(target) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def http_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait(grpc_targets: list[str], urls: list[str], timeout: float, interval: float = 0.1) -> list[str]:
    """The targets still failing after ``timeout`` seconds (empty: all healthy)."""
    checks: list[tuple[str, Callable[[str], bool]]] = [(t, grpc_healthy) for t in grpc_targets]
    checks += [(u, http_healthy) for u in urls]
    deadline = time.monotonic() + timeout
    while True:
        checks = [(t, ok) for t, ok in checks if not ok(t)]
        if not checks or time.monotonic() > deadline:
            return [t for t, _ in checks]
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m imgapi_cli.health_probe")
    p.add_argument("--grpc", action="append", default=[], help="host:port of a gRPC service")
    p.add_argument("--http", action="append", default=[], help="URL answering 200 when healthy")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args(argv)
    failing = wait(a.grpc, a.http, a.timeout)
    if failing:
        print(f"not healthy after {a.timeout:g}s: {', '.join(failing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
