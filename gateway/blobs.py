"""Deleting blobs the catalog reports as orphaned (after DeleteImage, file/icon replacement...)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import grpc
from imgapi.v1 import blob_pb2

from gateway.clients import is_unavailable
from gateway.context import RequestContext
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import error_reason

log = logging.getLogger("gateway.blobs")


async def delete_orphans(ctx: RequestContext, blob_ids: Iterable[str], *, strict: bool = True) -> None:
    """Delete each blob. An unreachable blob store is 503 ``StorageIsDown`` when ``strict``;
    other failures leave harmless garbage (logged)."""
    for blob_id in blob_ids:
        if not blob_id:
            continue
        try:
            await ctx.clients.blob.DeleteBlob(blob_pb2.DeleteBlobRequest(blob_id=blob_id), **ctx.rpc)
        except grpc.RpcError as e:
            reason, _ = error_reason(e)
            if reason == "BlobNotFound":
                continue
            log.warning("could not delete blob %s: %s", blob_id, reason or e)
            if strict and (reason == "StorageIsDown" or is_unavailable(e)):
                raise ImgapiError("StorageIsDown", "storage is down") from None
