"""The blob service's unary calls through an in-process channel, for a caller hosted in its process.

The embedded stack's gateway starts, commits and puts blobs this way (imgapi_cli/monolith.py): the
same service, servicer, interceptors and error statuses as the blob gRPC server beside it, without
a socket. File bytes of large uploads and every download still stream over the blob service's port
(imgapi_common.local_channel carries unary calls only); both reach the same service object.
"""

from __future__ import annotations

from blob_service.api.server import blob_method_handlers, interceptors
from blob_service.api.servicer import BlobServicer
from blob_service.handlers.operations import BlobService
from imgapi_common.local_channel import LocalChannel


def local_channel(service: BlobService) -> LocalChannel:
    """A channel to ``service``, this process's blob service. Its calls write and fsync files (or
    reach S3), so they run on the channel's threads, never on the caller's event loop."""
    settings = service.settings
    return LocalChannel(
        blob_method_handlers(BlobServicer(service)),
        interceptors(settings),
        max_workers=settings.max_workers,
    )
