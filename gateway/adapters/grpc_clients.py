"""gRPC channels to the catalog and blob services (the blob one used through :mod:`blob_client`):
created once per app, closed at shutdown.

Every channel sends the stack's internal token (imgapi_common.internal_auth) with each call."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from grpc import aio
from imgapi.v1 import catalog_pb2_grpc, docker_pb2_grpc, replication_pb2_grpc
from pydantic import SecretStr

from blob_client import READ_WINDOW_OPTIONS, AsyncBlobClient
from gateway.settings import GatewaySettings
from imgapi_common.internal_auth import aio_channel
from imgapi_common.limits import MAX_CATALOG_ANSWER_BYTES

#: At least the catalog's largest answer (a ListImages page of the largest images, docs/limits.md).
_MAX_MESSAGE = max(256 * 1024 * 1024, MAX_CATALOG_ANSWER_BYTES)
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
    """Async stubs and the blob client, plus the deadlines to use with them (``timeout=`` on every call).

    The catalog is reached through several connections, used in turn: a catalog running several
    processes on one port (SO_REUSEPORT) or behind a connection-level balancer spreads
    connections, not calls, so one connection would pin every call to one process.
    """

    catalog_channels: list[aio.Channel]
    blob_channel: aio.Channel
    catalog_stubs: list[catalog_pb2_grpc.CatalogServiceAsyncStub]
    blobs: AsyncBlobClient
    #: Deadline of ordinary calls and of calls that move file bytes (seconds).
    timeout: float
    transfer_timeout: float
    #: The replication service (``replication_target``), None when not configured.
    replication_channel: aio.Channel | None = None
    replication: replication_pb2_grpc.ReplicationServiceAsyncStub | None = None
    #: Docker imports, served by the replication service (None when it is not configured).
    docker: docker_pb2_grpc.DockerImportAsyncStub | None = None
    #: The in-process channel of the blob service's unary calls (InProcess.blob), if any.
    blob_unary_channel: aio.Channel | None = None
    #: The internal token the channels send (for channels opened later, gateway/adapters/balance.py).
    token: SecretStr = field(default_factory=lambda: SecretStr(""), repr=False)

    _next: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def catalog(self) -> catalog_pb2_grpc.CatalogServiceAsyncStub:
        return self.catalog_stubs[next(self._next) % len(self.catalog_stubs)]

    async def close(self) -> None:
        for ch in self.catalog_channels:
            await ch.close(None)
        await self.blob_channel.close(None)
        if self.blob_unary_channel is not None:
            await self.blob_unary_channel.close(None)
        if self.replication_channel is not None:
            await self.replication_channel.close(None)


def new_catalog_channel(
    target: str, token: SecretStr | str = ""
) -> tuple[aio.Channel, catalog_pb2_grpc.CatalogServiceAsyncStub]:
    """A channel with a connection of its own (a local subchannel pool: otherwise gRPC shares one
    connection between the channels to one target), and its stub."""
    channel = aio_channel(target, token, [*_OPTIONS, ("grpc.use_local_subchannel_pool", 1)])
    return channel, catalog_pb2_grpc.CatalogServiceStub(channel)  # type: ignore[return-value]


@dataclass(frozen=True)
class InProcess:
    """Services hosted in the gateway's own process (the embedded stack, imgapi_cli/monolith.py):
    each opens an in-process channel (imgapi_common.local_channel) used in place of the network.
    ``catalog`` replaces ``catalog_target``; ``blob`` carries the blob service's unary calls (start,
    put, commit, delete), while file bytes still stream to ``blob_target``."""

    catalog: Callable[[], aio.Channel]
    blob: Callable[[], aio.Channel] | None = None


def create_clients(settings: GatewaySettings, in_process: InProcess | None = None) -> Clients:
    """Must be called inside the event loop that will use the channels."""
    token = settings.internal_token
    cats: list[tuple[aio.Channel, catalog_pb2_grpc.CatalogServiceAsyncStub]]
    if in_process is not None:
        local = in_process.catalog()
        cats = [(local, catalog_pb2_grpc.CatalogServiceStub(local))]  # type: ignore[list-item]
    else:
        cats = [
            new_catalog_channel(settings.catalog_target, token) for _ in range(settings.catalog_connections)
        ]
    # Downloads read ahead of their HTTP client by about one message (blob_client.aio).
    blob = aio_channel(settings.blob_target, token, [*_OPTIONS, *READ_WINDOW_OPTIONS])
    blob_unary = in_process.blob() if in_process is not None and in_process.blob is not None else None
    repl = aio_channel(settings.replication_target, token, _OPTIONS) if settings.replication_target else None
    return Clients(
        catalog_channels=[c for c, _ in cats],
        blob_channel=blob,
        catalog_stubs=[s for _, s in cats],
        # No per-chunk CRC-32: an HTTP body brings none to carry over, the blob service verifies the
        # digests at commit, and computing and checking one costs ~0.1 CPU-s per GiB on each side.
        blobs=AsyncBlobClient(
            blob,
            unary_channel=blob_unary,
            timeout=settings.rpc_timeout_seconds,
            transfer_timeout=settings.transfer_timeout_seconds,
            checksum=False,
        ),
        timeout=settings.rpc_timeout_seconds,
        transfer_timeout=settings.transfer_timeout_seconds,
        blob_unary_channel=blob_unary,
        replication_channel=repl,
        replication=(
            replication_pb2_grpc.ReplicationServiceStub(repl)  # type: ignore[call-overload]
            if repl is not None
            else None
        ),
        docker=(
            docker_pb2_grpc.DockerImportStub(repl)  # type: ignore[call-overload]
            if repl is not None
            else None
        ),
        token=token,
    )
