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
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from imgapi.v1 import catalog_pb2, image_pb2

from blob_client import BlobError, SyncUpload, UploadSpec
from blob_client.policy import RESUMABLE
from imgapi_common.manifest_fields import MAX_ORIGIN_CHAIN, ZERO_UUID
from replication.copy_errors import Conflict, CopyError
from replication.destination import VIEW, Destination, DestinationError
from replication.icon_copy import copy_icon
from replication.metadata_sync import sync_metadata
from replication.rate_limiter import RateLimiter
from replication.sources import Source, SourceError, SourceImage, md5_hex
from replication.store import Store

log = logging.getLogger(__name__)

#: Keys of the REST image object that are not AdminImportImage input.
NOT_IMPORTED = ("files", "state", "icon", "channels")


def import_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in NOT_IMPORTED}


@dataclass(frozen=True)
class CopyMilestone:
    """A milestone of a copy, reported to ``on_progress`` (from the copying thread).

    ``kind``: ``begin`` (the image is about to be created or completed here: its origins are
    done), ``imported`` (AdminImportImage created it), ``found`` (it existed here unactivated and is
    being completed), ``resume`` (its file continues at ``done`` of ``total`` bytes: the upload
    already holds the bytes before), ``bytes`` (``done`` of ``total`` committed), ``attached`` (the
    file, ``detail`` = its SHA-1), ``activated``.
    """

    kind: str
    uuid: str
    done: int = 0
    total: int = 0
    detail: str = ""


@dataclass
class Outcome:
    created: bool = False
    updated: bool = False
    #: Bytes sent by this call (a resumed copy sends only what the destination lacked).
    bytes: int = 0
    #: Size of the files this call completed (attached), however many runs it took to send them:
    #: the image's own and those of the missing origins created on the way.
    file_bytes: int = 0
    #: Missing origins created on the way (their bytes are in ``bytes`` and ``file_bytes``).
    origins_created: int = 0

    @property
    def images_created(self) -> int:
        return int(self.created) + self.origins_created


class Copier:
    """Brings images of ``source`` into ``dest``. Thread-safe: one lock per image uuid.

    With a ``store`` (a job), the blob upload of a file being copied is persisted so that a
    restarted copier resumes it, and deletes only touch images this job replicated.
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
        self.limiter = limiter or RateLimiter(0)
        self.on_bytes = on_bytes
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        #: True when the job is stopping: a file copy ends at the next chunk (its upload stays).
        self.stopped = stopped
        self.on_progress = on_progress
        #: The AdminImportImage body made of a source image object (default: without files,
        #: state, icon, channels).
        self.import_body = import_body
        #: Images imported *with* the owner check (``skip_owner_check=false``); others skip it.
        self.owner_checked = owner_checked
        self._locks: dict[str, threading.RLock] = {}
        self._locks_lock = threading.Lock()
        #: image uuid -> (bytes committed, total) of files being copied now (status display).
        self.live: dict[str, tuple[int, int]] = {}

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
            dest = self._copy_file(img, out)
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

    def _sleep(self, failures: int) -> None:
        time.sleep(min(self.max_backoff, self.backoff * (2 ** min(failures, 10))))

    def _copy_file(self, img: SourceImage, out: Outcome) -> image_pb2.Image:
        f = img.file
        assert f is not None
        blobs = self.dest.blobs
        upload: SyncUpload | None = None
        p = self.store.get_progress(self.job_id, img.uuid) if self.store is not None else None
        if p is not None and p.upload_id and p.file_sha1 == f.sha1:
            try:
                upload = blobs.upload_of(p.upload_id)
            except BlobError as e:
                if e.reason not in ("UploadNotFound", "InvalidId"):
                    raise CopyError(f"GetUpload: {e.reason}: {e.message}") from None
        if upload is None:
            spec = UploadSpec(
                expected_size=f.size,
                sha1=f.sha1 or None,
                md5=md5_hex(f.content_md5),
                label=f"replication:{img.uuid}",
            )
            try:
                upload = blobs.create_upload(spec)
            except BlobError as e:
                raise CopyError(f"StartUpload: {e.reason}: {e.message}") from None
        upload_id, offset = upload.upload_id, upload.info.committed_offset
        if offset:
            self._progress("resume", img.uuid, offset, f.size)
        if self.store is not None:
            self.store.set_progress(
                self.job_id,
                img.uuid,
                status="copying",
                upload_id=upload_id,
                file_sha1=f.sha1,
                bytes_done=offset,
                bytes_total=f.size,
                resumed_from=offset,
            )
        failures = 0
        self.live[img.uuid] = (offset, f.size)
        finished = False
        try:
            while offset < f.size:
                if self.stopped():
                    raise CopyError(f"stopped while copying the file of {img.uuid} (at {offset})")
                start = offset
                try:
                    data = self._sending(img.uuid, offset, f.size, self.source.read_file(img, offset))
                    offset = upload.write(data, offset)
                except (BlobError, SourceError) as e:
                    failures += 1
                    if isinstance(e, BlobError) and e.reason not in RESUMABLE:
                        raise CopyError(f"WriteChunks: {e.reason}: {e.message}", transient=False) from None
                    if isinstance(e, SourceError) and not e.transient:
                        raise CopyError(str(e), transient=False, code="RemoteSourceError") from None
                    if failures > self.retries:
                        code = "RemoteSourceError" if isinstance(e, SourceError) else ""
                        raise CopyError(f"copying the file of {img.uuid}: {e}", code=code) from None
                    log.info("copying the file of %s at %d (attempt %d): %s", img.uuid, offset, failures, e)
                    self._sleep(failures)
                    offset = self._committed(upload, e)
                    if offset:
                        self._progress("resume", img.uuid, offset, f.size)
                else:
                    if offset <= start:  # the source ended early
                        failures += 1
                        if failures > self.retries:
                            raise CopyError(
                                f"source file of {img.uuid} ended at {offset}/{f.size}",
                                code="RemoteSourceError",
                            )
                        self._sleep(failures)
                if offset > start:
                    failures = 0
                    self._count(img.uuid, offset - start, offset, f.size, out)
            try:
                info = upload.commit(sha1=f.sha1 or None, expected_size=f.size)
            except BlobError as e:
                if e.reason in ("DigestMismatch", "SizeMismatch", "UploadNotFound"):
                    if self.store is not None:  # the upload is gone: start over next time
                        self.store.set_progress(self.job_id, img.uuid, upload_id="", bytes_done=0)
                    raise CopyError(
                        f"CommitUpload {img.uuid}: {e.reason}: {e.message}", code="Download"
                    ) from None
                raise CopyError(f"CommitUpload {img.uuid}: {e.reason}: {e.message}") from None
            finished = True
        finally:
            self.live.pop(img.uuid, None)
            if not finished and self.store is None:
                # Nobody will resume this upload (no job state): do not leave it behind.
                try:
                    upload.cancel()
                except BlobError as e:
                    log.debug("abort of upload %s: %s", upload_id, e)
        file = image_pb2.ImageFile(
            sha1=info.sha1,
            size=info.size,
            compression=f.compression or "none",
            content_md5=info.content_md5,
            blob_id=info.blob_id,
        )
        if f.dataset_guid:
            file.dataset_guid = f.dataset_guid
        res = self.dest.call(
            "AttachImageFile",
            catalog_pb2.AttachImageFileRequest(
                caller=self.dest.write_caller, view=VIEW, uuid=img.uuid, file=file
            ),
        )
        self.dest.blobs.delete_orphans(res.orphaned_blob_ids)  # the file it replaced
        dest = res.image
        if self.store is not None:
            self.store.set_progress(self.job_id, img.uuid, upload_id="", bytes_done=f.size)
        out.file_bytes += f.size
        self._progress("attached", img.uuid, f.size, f.size, info.sha1)
        return dest  # type: ignore[no-any-return]

    def _sending(self, uuid: str, offset: int, total: int, data: Iterable[bytes]) -> Iterator[bytes]:
        """The source bytes, paced by the bandwidth limit, shown live, cut short when stopping."""
        pos = offset
        for piece in self.limiter.pieces(data):
            yield piece
            pos += len(piece)
            self.live[uuid] = (pos, total)
            if self.stopped():
                return

    def _committed(self, upload: SyncUpload, err: Exception) -> int:
        try:
            return upload.resume_point(err)
        except BlobError as e:
            raise CopyError(f"GetUpload {upload.upload_id}: {e.reason}: {e.message}") from None

    def _count(self, uuid: str, n: int, done: int, total: int, out: Outcome) -> None:
        out.bytes += n
        self.live[uuid] = (done, total)
        if self.on_bytes is not None:
            self.on_bytes(n)
        if self.store is not None:
            self.store.set_progress(self.job_id, uuid, bytes_done=done)
        self._progress("bytes", uuid, done, total)
