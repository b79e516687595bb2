"""The catalog reached through an in-process channel, by a caller hosted in the catalog's process.

The embedded stack's gateway calls the catalog this way (imgapi_cli/monolith.py): the same service,
servicer, interceptors and error statuses as the catalog's gRPC server beside it, without a socket
between them (imgapi_common.local_channel).
"""

from __future__ import annotations

from imgapi.v1 import catalog_pb2_grpc

from catalog_service.api.server import interceptors
from catalog_service.api.servicer import CatalogServicer
from catalog_service.handlers.operations import CatalogService
from imgapi_common.local_channel import LocalChannel, method_handlers


def local_channel(service: CatalogService) -> LocalChannel:
    """A channel to ``service``, this process's catalog (closing it leaves the service running).

    On SQLite, calls run on the caller's own thread (the gateway's event loop): a primary-key read,
    an indexed page from the page cache or a one-image write transaction (WAL with
    ``synchronous=NORMAL``: no fsync but at checkpoints) is done sooner than a hand-off to a pool
    thread and back, which with the GIL costs more than the call itself (docs/performance.md, section 7).
    The price: while a call runs the loop waits, also for another connection's write lock
    (busy_timeout); in the embedded stack only the catalog's own gRPC port (replication, operators)
    writes besides the gateway. On PostgreSQL (a network round trip per statement) calls run on the
    channel's threads.
    """
    settings = service.settings
    return LocalChannel(
        method_handlers(
            catalog_pb2_grpc.add_CatalogServiceServicer_to_server, CatalogServicer(service, 0, 1)
        ),
        interceptors(settings),
        max_workers=settings.max_workers,
        on_caller_thread=service.engine.dialect.name == "sqlite",
    )
