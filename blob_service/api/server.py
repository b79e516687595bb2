"""Building the blob gRPC server (health, reflection, expired-upload reaper)."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1.health import HealthServicer
from imgapi.v1 import blob_pb2, blob_pb2_grpc

from blob_client.wire import raw_request, serialize_read_response
from blob_service.adapters.storage import make_storage
from blob_service.api.servicer import BlobServicer
from blob_service.api.status import blob_status
from blob_service.domain.errors import BlobError
from blob_service.handlers.operations import BlobService, storage_errors
from blob_service.settings import BlobSettings
from imgapi_common.grpc_server import build_server, service_interceptors
from imgapi_common.local_channel import method_handlers
from imgapi_common.observability import ObservabilityInterceptor

SERVICE_NAME = blob_pb2.DESCRIPTOR.services_by_name["BlobService"].full_name
_METHOD = f"/{SERVICE_NAME}/"


def blob_method_handlers(servicer: BlobServicer) -> dict[str, grpc.RpcMethodHandler]:  # type: ignore[type-arg]
    """The generated method handlers by full method name, except for the two methods that carry
    file bytes: WriteChunks receives its requests as raw bytes (the servicer parses them without
    copying the data) and ReadBlob may yield pre-encoded response bytes."""
    handlers = method_handlers(blob_pb2_grpc.add_BlobServiceServicer_to_server, servicer)
    write = handlers[_METHOD + "WriteChunks"]
    assert write.stream_unary is not None
    handlers[_METHOD + "WriteChunks"] = grpc.stream_unary_rpc_method_handler(
        write.stream_unary,
        request_deserializer=raw_request,
        response_serializer=write.response_serializer,
    )
    read = handlers[_METHOD + "ReadBlob"]
    assert read.unary_stream is not None
    handlers[_METHOD + "ReadBlob"] = grpc.unary_stream_rpc_method_handler(
        read.unary_stream,
        request_deserializer=read.request_deserializer,
        response_serializer=serialize_read_response,
    )
    return handlers


def register_blob_servicer(servicer: BlobServicer, server: Any) -> None:
    """Registers :func:`blob_method_handlers` on a gRPC server."""
    by_name = {full.removeprefix(_METHOD): h for full, h in blob_method_handlers(servicer).items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, by_name),))
    server.add_registered_method_handlers(SERVICE_NAME, by_name)


def _own_interceptors(settings: BlobSettings) -> list[grpc.ServerInterceptor[Any, Any]]:
    return [ObservabilityInterceptor(access_log=settings.access_log)]


def interceptors(settings: BlobSettings) -> list[grpc.ServerInterceptor[Any, Any]]:
    """What the blob server runs around each call after authentication (its in-process channel,
    blob_service.api.local, runs the same)."""
    return service_interceptors(_own_interceptors(settings), blob_status)


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
        [(register_blob_servicer, BlobServicer(service))],
        [SERVICE_NAME],
        settings.bind,
        max_workers=settings.max_workers,
        interceptors=_own_interceptors(settings),
        internal_token=settings.internal_token,
        status_of=blob_status,
    )
    service.start_reaper()
    return server, port, health, service
