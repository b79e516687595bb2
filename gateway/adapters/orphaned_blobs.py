"""Deleting blobs the catalog reports as orphaned (after DeleteImage, file/icon replacement...)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gateway.adapters.grpc_clients import Clients
from imgapi_common import image_uploads


class Caller(Protocol):
    """Who deletes: a request (``RequestContext``) or a call scope outside one."""

    @property
    def clients(self) -> Clients: ...

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]: ...


async def delete_orphans(caller: Caller, blob_ids: Iterable[str], *, strict: bool = True) -> None:
    """Delete each blob. An unreachable blob store is 503 ``StorageIsDown`` when ``strict``;
    other failures leave harmless garbage (logged), never a dangling reference."""
    await image_uploads.delete_orphans(caller.clients.blobs, blob_ids, caller.metadata, strict=strict)
