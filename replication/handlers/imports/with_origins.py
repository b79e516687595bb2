"""Importing one image of a source with its missing origins, active, for AdminImportRemoteImage and
the other remote imports (the machinery of replication jobs, one image at a time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from imgapi.v1 import image_pb2

from replication.adapters.destination import Destination
from replication.adapters.sources import (
    Source,
)
from replication.domain.copy_errors import CopyError
from replication.handlers.copy.copier import Copier, import_manifest
from replication.handlers.copy.reports import CopyMilestone


def import_image_with_origins(
    source: Source,
    dest: Destination,
    uuid: str,
    *,
    skip_owner_check: bool = True,
    require_active: bool = True,
    on_progress: Callable[[CopyMilestone], None] | None = None,
    import_body: Callable[[dict[str, Any]], dict[str, Any]] = import_manifest,
    retries: int = 8,
    backoff: float = 0.2,
    stopped: Callable[[], bool] = lambda: False,
) -> image_pb2.Image:
    """Import one image of ``source`` with its missing origins (root first), active, with the
    source's uuid, published_at, file, icon, ACL and disabled state. The machinery of replication
    jobs, for AdminImportRemoteImage. Raises :class:`CopyError` / :class:`Conflict`.

    ``skip_owner_check`` applies to ``uuid`` itself (origins are always imported without the owner
    check, as AdminImportRemoteImage does); the catalog applies the owner rules of its mode.
    ``require_active=False`` imports (and activates) an image that is not active at the source.
    ``on_progress`` receives the :class:`CopyMilestone` milestones; a file copy interrupted by the link
    continues from the upload's committed offset (up to ``retries`` attempts without progress).
    """
    img = source.get(uuid)
    if img is None:
        raise CopyError(f"image {uuid} not found at the source", transient=False, code="RemoteSourceError")
    if not img.activated:
        if require_active:
            raise CopyError(f"image {uuid} is not active at the source", transient=False)
        img = replace(img, manifest={**img.manifest, "state": "active"})
    copier = Copier(
        source,
        dest,
        retries=retries,
        backoff=backoff,
        stopped=stopped,
        on_progress=on_progress,
        import_body=import_body,
        owner_checked=frozenset() if skip_owner_check else frozenset({uuid}),
    )
    copier.sync(img)
    got = dest.get(uuid)
    if got is None:  # pragma: no cover - deleted concurrently
        raise CopyError(f"image {uuid} vanished after its import")
    return got
