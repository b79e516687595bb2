"""Container / supervisor health probe: exit 0 when the service answers healthy, 1 otherwise.

    python deploy/healthcheck.py grpc 127.0.0.1:8501 imgapi.v1.CatalogService
    python deploy/healthcheck.py http http://127.0.0.1:8080/ping

``grpc`` asks the standard gRPC health service (no credentials needed: health checks are the one
call the services answer without the internal token); ``http`` expects a 200. Standard library and
grpcio only, so it runs in the imgapi image as it is.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def grpc_healthy(target: str, service: str = "", timeout: float = 3.0) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as ch:
            r = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
    except grpc.RpcError as e:
        print(f"{target}: {e.code().name}", file=sys.stderr)  # type: ignore[attr-defined]
        return False
    serving = r.status == health_pb2.HealthCheckResponse.SERVING
    if not serving:
        print(f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)}", file=sys.stderr)
    return bool(serving)


def http_healthy(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError) as e:
        print(f"{url}: {e}", file=sys.stderr)
        return False


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "grpc" and len(argv) <= 3:
        return 0 if grpc_healthy(argv[1], argv[2] if len(argv) == 3 else "") else 1
    if len(argv) == 2 and argv[0] == "http":
        return 0 if http_healthy(argv[1]) else 1
    print("usage: healthcheck.py grpc HOST:PORT [SERVICE] | http URL", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
