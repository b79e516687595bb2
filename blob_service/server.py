"""Building the blob gRPC server (health, reflection, expired-upload reaper)."""

from __future__ import annotations

import grpc
from grpc_health.v1.health import HealthServicer
from imgapi.v1 import blob_pb2, blob_pb2_grpc

from blob_service.errors import BlobError
from blob_service.service import BlobService, storage_errors
from blob_service.servicer import BlobServicer
from blob_service.settings import BlobSettings
from blob_service.storage import make_storage
from imgapi_common.grpc_server import build_server
from imgapi_common.observability import ObservabilityInterceptor

SERVICE_NAME = blob_pb2.DESCRIPTOR.services_by_name["BlobService"].full_name


def create_server(settings: BlobSettings) -> tuple[grpc.Server, int, HealthServicer, BlobService]:
    """A bound, not yet started server; the reaper runs from now until ``service.stop()``."""
    storage = make_storage(settings)
    try:
        with storage_errors():
            storage.check()
    except BlobError as e:
        raise RuntimeError(f"blob storage ({settings.backend}) unusable: {e.message}") from e
    service = BlobService(storage, settings)
    server, port, health = build_server(
        [(blob_pb2_grpc.add_BlobServiceServicer_to_server, BlobServicer(service))],
        [SERVICE_NAME],
        settings.bind,
        max_workers=settings.max_workers,
        interceptors=[ObservabilityInterceptor(access_log=settings.access_log)],
    )
    service.start_reaper()
    return server, port, health, service
