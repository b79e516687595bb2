"""Copying one image (and its missing origins, root first) from a source into this datacenter.

Every step is idempotent, so a killed copier redoes at most the step it was in:

1. AdminImportImage with the source manifest (uuid and published_at preserved): an *unactivated*
   image, invisible to default listings.
2. The file: a blob-service upload whose id is persisted before the first byte; after a crash the
   copy continues from the upload's committed offset (ranged ReadBlob for gRPC sources), the upload
   is committed with the source's SHA-1 (+MD5) and attached (AttachImageFile).
3. The icon (small: one upload), then ActivateImage: the image becomes visible complete.
4. Metadata: UpdateImage of the fields that differ, Disable/Enable, ACL, icon.

An image that exists here with another owner or another file digest is a *conflict*: it is recorded
and left untouched.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from imgapi.v1 import catalog_pb2, image_pb2

from imgapi_common.manifest_fields import MAX_ORIGIN_CHAIN, ZERO_UUID
from replication.adapters.destination import VIEW, Destination, DestinationError
from replication.adapters.sources import Source, SourceImage
from replication.adapters.store import Store
from replication.domain.copy_errors import Conflict, CopyError
from replication.handlers.copy.file_copy import FileCopy
from replication.handlers.copy.icon import copy_icon
from replication.handlers.copy.metadata import sync_metadata
from replication.handlers.copy.rate_limiter import RateLimiter
from replication.handlers.copy.reports import CopyMilestone, Outcome

log = logging.getLogger(__name__)

#: Keys of the REST image object that are not AdminImportImage input.
NOT_IMPORTED = ("files", "state", "icon", "channels")


def import_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in NOT_IMPORTED}


class Copier:
    """Brings images of ``source`` into ``dest``. Thread-safe: one lock per image uuid.

    With a ``store`` (a job), the blob upload of a file being copied is persisted so that a
    restarted copier resumes it (:class:`FileCopy`: ``retries`` resumable failures in a row, with
    exponential ``backoff`` up to ``max_backoff``, paced by ``limiter``, ``on_bytes`` told of every
    byte committed, ended by ``stopped``), and deletes only touch images this job replicated.
    """

    def __init__(
        self,
        source: Source,
        dest: Destination,
        *,
        store: Store | None = None,
        job_id: str = "",
        limiter: RateLimiter | None = None,
        on_bytes: Callable[[int], None] | None = None,
        retries: int = 8,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        stopped: Callable[[], bool] = lambda: False,
        on_progress: Callable[[CopyMilestone], None] | None = None,
        import_body: Callable[[dict[str, Any]], dict[str, Any]] = import_manifest,
        owner_checked: frozenset[str] = frozenset(),
    ) -> None:
        self.source = source
        self.dest = dest
        self.store = store
        self.job_id = job_id
        self.on_progress = on_progress
        #: The AdminImportImage body made of a source image object (default: without files,
        #: state, icon, channels).
        self.import_body = import_body
        #: Images imported *with* the owner check (``skip_owner_check=false``); others skip it.
        self.owner_checked = owner_checked
        self.files = FileCopy(
            source,
            dest,
            self._progress,
            store=store,
            job_id=job_id,
            limiter=limiter or RateLimiter(0),
            on_bytes=on_bytes,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            stopped=stopped,
        )
        #: image uuid -> (bytes committed, total) of files being copied now (status display).
        self.live = self.files.live
        self._locks: dict[str, threading.RLock] = {}
        self._locks_lock = threading.Lock()

    def _progress(self, kind: str, uuid: str, done: int = 0, total: int = 0, detail: str = "") -> None:
        if self.on_progress is not None:
            self.on_progress(CopyMilestone(kind, uuid, done, total, detail))

    def _lock(self, uuid: str) -> threading.RLock:
        with self._locks_lock:
            lock = self._locks.get(uuid)
            if lock is None:
                lock = self._locks[uuid] = threading.RLock()
            return lock

    # --- public operations ---------------------------------------------------------------------

    def sync(self, img: SourceImage, _depth: int = 0) -> Outcome:
        """Make the local image ``img.uuid`` match the source (creating it with its origins)."""
        out = Outcome()
        if not img.activated:
            return out  # not published at the source yet: its activate event will bring it
        with self._lock(img.uuid):
            dest = self.dest.get(img.uuid)
            if dest is not None:
                self._check_conflict(img, dest)
            if dest is None or not dest.activated:
                origin = self._ensure_origin(img, _depth)
                out.origins_created, out.bytes = origin.images_created, origin.bytes
                out.file_bytes = origin.file_bytes
                dest = self._create(img, dest, out)
                out.created = True
            out.updated = sync_metadata(self.source, self.dest, img, dest)
        return out

    def delete(self, uuid: str) -> bool:
        """Delete the local copy of ``uuid`` (only one this job replicated, when it has a store)."""
        with self._lock(uuid):
            if self.store is not None:
                p = self.store.get_progress(self.job_id, uuid)
                if p is None or p.status != "done":
                    return False
            if self.dest.get(uuid) is None:
                return False
            try:
                res = self.dest.call(
                    "DeleteImage",
                    catalog_pb2.DeleteImageRequest(
                        caller=self.dest.write_caller, uuid=uuid, force_all_channels=True
                    ),
                )
            except DestinationError as e:
                if e.code == "ResourceNotFound":
                    return False
                raise
            self.dest.blobs.delete_orphans(res.orphaned_blob_ids)
            return True

    # --- steps ---------------------------------------------------------------------------------

    def _check_conflict(self, img: SourceImage, dest: image_pb2.Image) -> None:
        if dest.owner != img.owner and ZERO_UUID not in (dest.owner, img.owner):
            raise Conflict(img.uuid, "owner", f"source owner {img.owner}, local owner {dest.owner}")
        if dest.files and img.file is not None and dest.files[0].sha1 != img.file.sha1:
            raise Conflict(
                img.uuid, "file", f"source file sha1 {img.file.sha1}, local file sha1 {dest.files[0].sha1}"
            )

    def _ensure_origin(self, img: SourceImage, depth: int) -> Outcome:
        """Create the origin chain of ``img`` where it is missing; what that created."""
        origin = img.origin
        if origin is None:
            return Outcome()
        if depth >= MAX_ORIGIN_CHAIN:
            raise CopyError(f"origin chain of {img.uuid} is too long", transient=False)
        found = self.dest.get(origin)
        if found is not None and found.activated:
            return Outcome()
        src = self.source.get(origin)
        if src is None:
            raise CopyError(
                f"origin {origin} of {img.uuid} is missing at the source",
                transient=True,
                code="RemoteSourceError",
            )
        if not src.activated:
            raise CopyError(f"origin {origin} of {img.uuid} is not active at the source", transient=True)
        return self.sync(src, depth + 1)

    def _create(self, img: SourceImage, dest: image_pb2.Image | None, out: Outcome) -> image_pb2.Image:
        self._progress("begin", img.uuid)
        if dest is None:
            req = catalog_pb2.AdminImportImageRequest(
                caller=self.dest.write_caller,
                view=VIEW,
                uuid=img.uuid,
                manifest_json=json.dumps(self.import_body(img.manifest)),
                skip_owner_check=img.uuid not in self.owner_checked,
                from_source=True,
            )
            try:
                dest = self.dest.call("AdminImportImage", req).image
            except DestinationError as e:
                if e.code != "ImageUuidAlreadyExists":
                    raise
                dest = self.dest.get(img.uuid)
                if dest is None:
                    raise
                self._check_conflict(img, dest)
                self._progress("found", img.uuid)
            else:
                self._progress("imported", img.uuid)
        else:
            self._progress("found", img.uuid)
        assert dest is not None
        if dest.activated:
            return dest
        if not dest.files:
            if img.file is None:
                raise CopyError(f"source image {img.uuid} has no file", transient=False, code="Download")
            dest = self.files.copy(img, out)
        if img.icon is not None and not dest.HasField("icon"):
            dest = copy_icon(self.source, self.dest, img)
        try:
            dest = self.dest.call(
                "ActivateImage",
                catalog_pb2.ImageActionRequest(caller=self.dest.write_caller, view=VIEW, uuid=img.uuid),
            ).image
        except DestinationError as e:
            if e.code != "ImageAlreadyActivated":
                raise
            got = self.dest.get(img.uuid)
            if got is None:
                raise
            dest = got
        self._progress("activated", img.uuid)
        return dest
