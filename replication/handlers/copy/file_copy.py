"""Copying one image's file: a blob-service upload whose id is persisted before the first byte (with
a job's store), sent from the committed offset on (after a failure, or a restart of the copier),
committed with the source's SHA-1 (+MD5) and attached to the image (AttachImageFile)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from imgapi.v1 import catalog_pb2, image_pb2

from blob_client import BlobError, BlobInfo, SyncUpload, UploadSpec
from blob_client.policy import RESUMABLE
from replication.adapters.destination import VIEW, Destination
from replication.adapters.sources import FileRef, Source, SourceError, SourceImage, md5_hex
from replication.adapters.store import Store
from replication.domain.copy_errors import CopyError
from replication.handlers.copy.rate_limiter import RateLimiter
from replication.handlers.copy.reports import Outcome

log = logging.getLogger(__name__)

#: Reports a milestone: ``(kind, uuid, done, total, detail)``.
Report = Callable[[str, str, int, int, str], None]


@dataclass
class FileCopy:
    """The file copies of one copier (see :class:`~replication.handlers.copy.copier.Copier` for the
    meaning of each setting); ``live`` maps the uuid of an image whose file is being copied to
    (bytes committed, total)."""

    source: Source
    dest: Destination
    report: Report
    store: Store | None = None
    job_id: str = ""
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0))
    on_bytes: Callable[[int], None] | None = None
    retries: int = 8
    backoff: float = 0.2
    max_backoff: float = 5.0
    stopped: Callable[[], bool] = lambda: False
    live: dict[str, tuple[int, int]] = field(default_factory=dict)

    def copy(self, img: SourceImage, out: Outcome) -> image_pb2.Image:
        """Copy the file of ``img`` and attach it; the image as the catalog then answers."""
        f = img.file
        assert f is not None
        upload = self._open(img, f)
        offset = upload.info.committed_offset
        if offset:
            self.report("resume", img.uuid, offset, f.size, "")
        if self.store is not None:
            self.store.set_progress(
                self.job_id,
                img.uuid,
                status="copying",
                upload_id=upload.upload_id,
                file_sha1=f.sha1,
                bytes_done=offset,
                bytes_total=f.size,
                resumed_from=offset,
            )
        self.live[img.uuid] = (offset, f.size)
        finished = False
        try:
            self._send(img, f, upload, offset, out)
            info = self._commit(img, f, upload)
            finished = True
        finally:
            self.live.pop(img.uuid, None)
            if not finished and self.store is None:
                # Nobody will resume this upload (no job state): do not leave it behind.
                try:
                    upload.cancel()
                except BlobError as e:
                    log.debug("abort of upload %s: %s", upload.upload_id, e)
        dest = self._attach(img, f, info)
        out.file_bytes += f.size
        self.report("attached", img.uuid, f.size, f.size, info.sha1)
        return dest

    def _open(self, img: SourceImage, f: FileRef) -> SyncUpload:
        """The upload a previous run of this job left for this file, or a new one."""
        blobs = self.dest.blobs
        p = self.store.get_progress(self.job_id, img.uuid) if self.store is not None else None
        if p is not None and p.upload_id and p.file_sha1 == f.sha1:
            try:
                return blobs.upload_of(p.upload_id)
            except BlobError as e:
                if e.reason not in ("UploadNotFound", "InvalidId"):
                    raise CopyError(f"GetUpload: {e.reason}: {e.message}") from None
        spec = UploadSpec(
            expected_size=f.size,
            sha1=f.sha1 or None,
            md5=md5_hex(f.content_md5),
            label=f"replication:{img.uuid}",
        )
        try:
            return blobs.create_upload(spec)
        except BlobError as e:
            raise CopyError(f"StartUpload: {e.reason}: {e.message}") from None

    def _send(self, img: SourceImage, f: FileRef, upload: SyncUpload, offset: int, out: Outcome) -> None:
        """Send the bytes from ``offset`` to the end, resuming from the committed offset after a
        resumable failure (at most ``retries`` in a row)."""
        failures = 0
        while offset < f.size:
            if self.stopped():
                raise CopyError(f"stopped while copying the file of {img.uuid} (at {offset})")
            start = offset
            try:
                data = self._paced(img.uuid, offset, f.size, self.source.read_file(img, offset))
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
                    self.report("resume", img.uuid, offset, f.size, "")
            else:
                if offset <= start:  # the source ended early
                    failures += 1
                    if failures > self.retries:
                        raise CopyError(
                            f"source file of {img.uuid} ended at {offset}/{f.size}", code="RemoteSourceError"
                        )
                    self._sleep(failures)
            if offset > start:
                failures = 0
                self._count(img.uuid, offset - start, offset, f.size, out)

    def _commit(self, img: SourceImage, f: FileRef, upload: SyncUpload) -> BlobInfo:
        try:
            return upload.commit(sha1=f.sha1 or None, expected_size=f.size)
        except BlobError as e:
            if e.reason in ("DigestMismatch", "SizeMismatch", "UploadNotFound"):
                if self.store is not None:  # the upload is gone: start over next time
                    self.store.set_progress(self.job_id, img.uuid, upload_id="", bytes_done=0)
                raise CopyError(
                    f"CommitUpload {img.uuid}: {e.reason}: {e.message}", code="Download"
                ) from None
            raise CopyError(f"CommitUpload {img.uuid}: {e.reason}: {e.message}") from None

    def _attach(self, img: SourceImage, f: FileRef, info: BlobInfo) -> image_pb2.Image:
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
        if self.store is not None:
            self.store.set_progress(self.job_id, img.uuid, upload_id="", bytes_done=f.size)
        return res.image  # type: ignore[no-any-return]

    def _sleep(self, failures: int) -> None:
        time.sleep(min(self.max_backoff, self.backoff * (2 ** min(failures, 10))))

    def _paced(self, uuid: str, offset: int, total: int, data: Iterable[bytes]) -> Iterator[bytes]:
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
        self.report("bytes", uuid, done, total, "")
