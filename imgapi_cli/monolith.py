"""``python -m imgapi_cli.monolith``: catalog, blob, replication and the REST gateway in ONE process.

The embedded default (``imgapi serve``) runs them this way, as Grafana Loki and Mimir run all their
components in one process in their monolithic mode: each service keeps its own gRPC server on its
own port, its own settings (``IMGAPI_CATALOG_*``, ``IMGAPI_BLOB_*``, ``IMGAPI_REPLICATION_*``,
``IMGAPI_GATEWAY_*``) and its own internal-token check, so callers see the same services as in
production, where compose and systemd run them as separate processes. What is shared is the
interpreter: one copy of Python, gRPC, protobuf, pydantic and the common code instead of four
(docs/performance.md).

The gateway reaches the catalog, and the blob service's unary calls, through in-process channels
(catalog_service.api.local, blob_service.api.local): the same service objects, servicers,
interceptors and error statuses their gRPC servers use, without the ~0.4 ms of CPU a loopback gRPC
call costs on both sides. The streams of file bytes go to the blob service's port, and replication
calls to its port, as in production (an in-process channel carries unary calls only). uvicorn runs
on the main thread; the gRPC servers run on their own threads.

Each log line names the service whose code wrote it (by logger name). SIGTERM/SIGINT stop the
gateway first (no new requests), then drain the three servers (health NOT_SERVING first), then stop
the replication jobs, the blob reaper and the catalog's database pool. Once every gRPC server is
started, the line ``services ready`` is printed on stdout, then the gateway's own; a service that
cannot start makes the process exit non-zero.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import uvicorn
from grpc_health.v1.health import HealthServicer
from pydantic import ValidationError

from imgapi_common.log_lines import is_terminal, json_line
from imgapi_common.memory import IdleTrimmer, tune_malloc
from imgapi_common.observability import configure_logging, refuse, start_metrics_server

#: The logger name prefix of each service's own code, for the ``service`` field of its log lines.
LOGGER_SERVICES = (
    ("catalog_service", "catalog"),
    ("blob_service", "blob"),
    ("replication", "replication"),
    ("gateway", "gateway"),
    ("uvicorn", "gateway"),
)
PROCESS_NAME = "services"


@dataclass
class Hosted:
    name: str
    server: grpc.Server
    port: int
    health: HealthServicer
    grace: float
    on_stop: Callable[[], None]
    #: The service object behind the server (the catalog's is shared with the gateway).
    service: Any = None


class ServiceTag(logging.Filter):
    """Sets ``record.service`` from the logger name (the formatters print it when present)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for prefix, service in LOGGER_SERVICES:
            if record.name == prefix or record.name.startswith(prefix + "."):
                record.service = service
                break
        return True


def _say(service: str, msg: str) -> None:
    print(msg if is_terminal(sys.stdout) else json_line(service, "info", msg), flush=True)


def _metrics(service: str, bind: str, metrics_port: int) -> str:
    """Start the service's ``/metrics`` server when configured; returns its listen host."""
    host = bind.rsplit(":", 1)[0]
    start_metrics_server(metrics_port, host, service=service)
    return host


def _one_process(name: str, logger: str, processes: int) -> None:
    """``IMGAPI_<NAME>_PROCESSES`` > 1 is ignored here, and said so."""
    if processes > 1:
        logging.getLogger(logger).warning(
            "IMGAPI_%s_PROCESSES=%d ignored: one %s in the shared process (imgapi serve --split "
            "runs the %s as its own worker processes)",
            name.upper(),
            processes,
            name,
            name,
        )


def _catalog() -> Hosted:
    from catalog_service.api.server import create_server
    from catalog_service.settings import CatalogSettings

    settings = CatalogSettings()
    _one_process("catalog", "catalog_service", settings.processes)
    server, port, health, service = create_server(settings)
    host = _metrics("catalog", settings.bind, settings.metrics_port)
    _say("catalog", f"catalog listening on {host}:{port} (mode {settings.mode})")
    return Hosted("catalog", server, port, health, settings.grace_seconds, service.engine.dispose, service)


def _blob() -> Hosted:
    from blob_service.api.server import create_server
    from blob_service.settings import load_settings

    settings = load_settings()
    server, port, health, service = create_server(settings)
    _metrics("blob", settings.bind, settings.metrics_port)
    _say("blob", f"blob service ({settings.backend} backend) listening on port {port}")
    return Hosted("blob", server, port, health, settings.grace_seconds, service.stop, service)


def _replication() -> Hosted:
    from replication.api.server import create_server
    from replication.settings import ReplicationSettings

    settings = ReplicationSettings()
    server, port, health, manager, imports, docker = create_server(settings)
    host = _metrics("replication", settings.bind, settings.metrics_port)
    manager.start_all()
    docker.resume_unfinished()
    _say("replication", f"replication listening on {host}:{port}")

    def stop() -> None:
        docker.stop()
        imports.close()
        manager.stop_all()
        manager.store.close()

    return Hosted("replication", server, port, health, 5.0, stop)


def _gateway(catalog: Any, blob: Any) -> uvicorn.Server:
    """The REST gateway on this process's catalog and blob service (``IMGAPI_GATEWAY_*``; the
    catalog target unused, the blob target used for the streams of file bytes)."""
    from blob_service.api import local as local_blob
    from catalog_service.api import local as local_catalog
    from gateway.adapters.grpc_clients import InProcess
    from gateway.server import uvicorn_config
    from gateway.settings import GatewaySettings

    settings = GatewaySettings()
    _one_process("gateway", "gateway", settings.processes)
    start_metrics_server(settings.metrics_port, settings.host, service="gateway")
    _say("gateway", f"gateway listening on http://{settings.host}:{settings.port}")
    in_process = InProcess(
        catalog=lambda: local_catalog.local_channel(catalog), blob=lambda: local_blob.local_channel(blob)
    )
    return uvicorn.Server(uvicorn_config(settings, in_process))


def _tag_log_lines() -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(ServiceTag())


def run() -> int:
    configure_logging(PROCESS_NAME)
    _tag_log_lines()
    tune_malloc()
    stop = threading.Event()

    def _handle(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    hosted: list[Hosted] = []
    try:
        for build in (_catalog, _blob, _replication):
            h = build()
            h.server.start()
            hosted.append(h)
            if stop.is_set():
                break
    except ValidationError as e:
        _stop(hosted)
        refuse(PROCESS_NAME, f"invalid configuration:\n{e}")
        return 2
    except RuntimeError as e:  # a port taken, storage unusable: said by the service's own check
        _stop(hosted)
        refuse(PROCESS_NAME, str(e))
        return 1
    try:
        services = {h.name: h.service for h in hosted}
        gateway = _gateway(services["catalog"], services["blob"])
    except ValidationError as e:
        _stop(hosted)
        refuse("gateway", f"invalid configuration (IMGAPI_GATEWAY_*):\n{e}")
        return 2
    trimmer = IdleTrimmer(_bytes_moved)
    trimmer.start()
    _say(PROCESS_NAME, "services ready")
    status = 0
    if not stop.is_set():
        # uvicorn takes SIGINT/SIGTERM while it runs, and hands them on (to _handle) once stopped.
        try:
            gateway.run()
        except SystemExit as e:  # uvicorn exits when it cannot listen
            status = e.code if isinstance(e.code, int) else 1
        if not gateway.started:
            status = status or 3  # uvicorn's own start-up failure status
    trimmer.stop()
    _stop(hosted)
    return status


def _bytes_moved() -> float:
    """File bytes the blob service has written and read so far (its own counter)."""
    from imgapi_common.observability import BLOB_BYTES

    return sum(
        s.value for metric in BLOB_BYTES.collect() for s in metric.samples if s.name.endswith("_total")
    )


def _stop(hosted: list[Hosted]) -> None:
    """Drain every server at once (new calls refused, running ones finish), then release resources
    in reverse start order (replication first: its jobs call the other two)."""
    for h in hosted:
        h.health.enter_graceful_shutdown()
    done = [h.server.stop(h.grace) for h in hosted]
    for event in done:
        event.wait()
    for h in reversed(hosted):
        h.on_stop()


if __name__ == "__main__":
    sys.exit(run())
