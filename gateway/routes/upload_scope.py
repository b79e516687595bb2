"""The call scope of the gateway's blob uploads (files and icons in :mod:`gateway.routes.files`, tus in
:mod:`gateway.routes.tus`): a request's clients, caller, view and metadata.

The upload itself (the catalog's pre-body checks, the body into a blob upload in 1 MiB chunks while
it arrives, the end-of-body checks in IMGAPI's order, the attachment) is
:mod:`imgapi_common.image_uploads`, shared with the replication service's file fetches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imgapi.v1 import catalog_pb2_grpc, common_pb2

from blob_client import AsyncBlobClient
from gateway.adapters.grpc_clients import Clients
from gateway.context import RequestContext


@dataclass(frozen=True)
class CallScope:
    """What every catalog/blob call of a file operation needs: stubs, caller, view, metadata
    (an :class:`imgapi_common.image_uploads.UploadScope`)."""

    clients: Clients
    caller: common_pb2.CallerContext
    view: common_pb2.ImageView
    metadata: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, ctx: RequestContext) -> CallScope:
        return cls(ctx.clients, ctx.caller(), ctx.answer_view, ctx.metadata)

    @property
    def catalog(self) -> catalog_pb2_grpc.CatalogServiceAsyncStub:
        return self.clients.catalog

    @property
    def blobs(self) -> AsyncBlobClient:
        return self.clients.blobs

    @property
    def rpc(self) -> dict[str, Any]:
        return {"timeout": self.clients.timeout, "metadata": self.metadata}
