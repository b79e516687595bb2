"""Assembling the catalog gRPC server: engine, migrations, service, servicer, housekeeping."""

from __future__ import annotations

import logging
import threading
from typing import Any

import grpc
from grpc_health.v1.health import HealthServicer
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc

from catalog_service.adapters.db.engine import make_engine, migrate
from catalog_service.api.servicer import CatalogServicer, translate_error
from catalog_service.handlers.operations import CatalogService
from catalog_service.settings import CatalogSettings
from imgapi_common.grpc_errors import imgapi_status
from imgapi_common.grpc_server import build_server, run_until_signal, service_interceptors
from imgapi_common.limits import MAX_CATALOG_ANSWER_BYTES, MAX_CATALOG_REQUEST_BYTES
from imgapi_common.observability import (
    ObservabilityInterceptor,
    announce,
    configure_logging,
    start_metrics_server,
)

log = logging.getLogger(__name__)

SERVICE_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
REAP_INTERVAL_SECONDS = 30 * 60
STATUS_OF = imgapi_status(translate_error)


def create_service(settings: CatalogSettings) -> CatalogService:
    engine = make_engine(
        settings.effective_database_url(),
        pool_size=min(settings.max_workers, 32),
        sqlite_mmap_bytes=settings.sqlite_mmap_bytes,
    )
    if settings.auto_migrate:
        migrate(engine)
    service = CatalogService(settings, engine)
    changed = service.revalidate_if_config_changed()
    if changed:
        log.info("configuration changed: validity of %d image(s) re-evaluated", changed)
    return service


def create_server(
    settings: CatalogSettings, worker: int = 0
) -> tuple[grpc.Server, int, HealthServicer, CatalogService]:
    """Build (not start) the catalog server of worker process ``worker`` (of ``settings.processes``);
    returns ``(server, port, health, service)``."""
    service = create_service(settings)
    servicer = CatalogServicer(service, worker, settings.processes)
    server, port, health = build_server(
        [(catalog_pb2_grpc.add_CatalogServiceServicer_to_server, servicer)],
        [SERVICE_NAME],
        settings.bind,
        max_workers=settings.max_workers,
        interceptors=_own_interceptors(settings),
        reuse_port=settings.processes > 1,
        internal_token=settings.internal_token,
        # a ListImages page of 1000 of the largest images (docs/limits.md)
        max_send_message_bytes=MAX_CATALOG_ANSWER_BYTES,
        # a JSON body at the gateway's limit, with its framing, is received (and then judged)
        max_receive_message_bytes=MAX_CATALOG_REQUEST_BYTES,
        status_of=STATUS_OF,
    )
    _start_reaper(service)
    return server, port, health, service


def _own_interceptors(settings: CatalogSettings) -> list[grpc.ServerInterceptor[Any, Any]]:
    return [ObservabilityInterceptor(access_log=settings.access_log)]


def interceptors(settings: CatalogSettings) -> list[grpc.ServerInterceptor[Any, Any]]:
    """What the catalog's server runs around each call after authentication (its in-process
    channel, catalog_service.api.local, runs the same)."""
    return service_interceptors(_own_interceptors(settings), STATUS_OF)


def _start_reaper(service: CatalogService) -> None:
    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(REAP_INTERVAL_SECONDS):
            try:
                service.reap_placeholders()
            except Exception:
                log.exception("placeholder reaper failed")

    threading.Thread(target=loop, name="placeholder-reaper", daemon=True).start()


def serve_process(worker: int, settings: CatalogSettings) -> int:
    """Run one catalog server process until SIGTERM/SIGINT (worker N serves metrics on port+N).

    ``settings`` reach a spawned worker pickled (a JSON dump would mask the internal token)."""
    configure_logging("catalog", settings.log_level)
    server, port, health, service = create_server(settings, worker)
    host = settings.bind.rsplit(":", 1)[0]
    metrics = start_metrics_server(settings.metrics_port + worker if settings.metrics_port else 0, host)
    announce(f"catalog listening on {host}:{port} (mode {settings.mode})")
    if metrics:
        announce(f"catalog metrics on http://{host}:{metrics}/metrics")
    run_until_signal(server, health, settings.grace_seconds, on_stop=service.engine.dispose)
    return 0
