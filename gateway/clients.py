"""gRPC channels and stubs to the catalog and blob services: created once per app, closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc import aio
from imgapi.v1 import blob_pb2_grpc, catalog_pb2_grpc, replication_pb2_grpc

from gateway.settings import GatewaySettings

_MAX_MESSAGE = 256 * 1024 * 1024
_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 1),
]


@dataclass
class Clients:
    """Async stubs plus the deadlines to use with them (``timeout=`` on every call)."""

    catalog_channel: aio.Channel
    blob_channel: aio.Channel
    catalog: catalog_pb2_grpc.CatalogServiceAsyncStub
    blob: blob_pb2_grpc.BlobServiceAsyncStub
    #: Deadline of ordinary calls and of calls that move file bytes (seconds).
    timeout: float
    transfer_timeout: float
    #: The replication service (``replication_target``), None when not configured.
    replication_channel: aio.Channel | None = None
    replication: replication_pb2_grpc.ReplicationServiceAsyncStub | None = None

    async def close(self) -> None:
        await self.catalog_channel.close(None)
        await self.blob_channel.close(None)
        if self.replication_channel is not None:
            await self.replication_channel.close(None)


def create_clients(settings: GatewaySettings) -> Clients:
    """Must be called inside the event loop that will use the channels."""
    cat = aio.insecure_channel(settings.catalog_target, options=_OPTIONS)
    blob = aio.insecure_channel(settings.blob_target, options=_OPTIONS)
    repl = (
        aio.insecure_channel(settings.replication_target, options=_OPTIONS)
        if settings.replication_target
        else None
    )
    return Clients(
        catalog_channel=cat,
        blob_channel=blob,
        catalog=catalog_pb2_grpc.CatalogServiceStub(cat),  # type: ignore[call-overload]
        blob=blob_pb2_grpc.BlobServiceStub(blob),  # type: ignore[call-overload]
        timeout=settings.rpc_timeout_seconds,
        transfer_timeout=settings.transfer_timeout_seconds,
        replication_channel=repl,
        replication=(
            replication_pb2_grpc.ReplicationServiceStub(repl)  # type: ignore[call-overload]
            if repl is not None
            else None
        ),
    )


def is_unavailable(exc: grpc.RpcError) -> bool:
    return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)  # type: ignore[attr-defined]
