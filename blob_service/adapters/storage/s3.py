"""S3 backend through the ``minio`` SDK (MinIO or any S3-compatible store).

An upload is an S3 multipart upload straight to the blob's final key, so the commit is
CompleteMultipartUpload: no server-side copy, and nothing is visible before it. Layout::

    uploads/<upload_id>/state.json       the session (parts done, tail, digest state)
    uploads/<upload_id>/tail-<token>     bytes after the last full part, saved at the end of a stream
    blobs/<blob_id>                      the blob (multipart upload target)
    blobs/<blob_id>.meta.json            size/digests; written last, so it decides visibility

A writer spools the part being assembled to a temporary file (never the blob in memory) and uploads
it when it reaches the part size; S3 cannot read uploaded parts back, so bytes below the last part
boundary are never re-read (digest state travels in the session instead). Tail objects are
immutable (a fresh token each time) so a state always names exactly the bytes it was hashed from.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from minio.datatypes import Part
from minio.error import S3Error

from blob_service.adapters.storage.base import StagedConflict, StorageUnavailable
from blob_service.adapters.storage.s3_bucket import S3Bucket, s3_errors
from blob_service.adapters.storage.s3_writer import S3Writer, Spool
from blob_service.domain.digests import Buffer
from blob_service.domain.ids import checked_id
from blob_service.domain.model import BlobMeta, UploadState


class S3Storage(S3Bucket):
    """The storage backend over one bucket (:class:`.s3_bucket.S3Bucket`)."""

    name = "s3"

    # --- uploads ----------------------------------------------------------------------------------

    def create_upload(self, state: UploadState) -> UploadState:
        key = self.blob_key(state.blob_id)
        with s3_errors():
            mpu = self.client._create_multipart_upload(
                self.bucket, key, {"Content-Type": "application/octet-stream"}
            )
        state = replace(state, staging={"mpu": mpu, "parts": [], "tail": None})
        try:
            self.save_upload(state)
        except BaseException:
            self.abort_quietly(key, mpu)
            raise
        return state

    def load_upload(self, upload_id: str) -> UploadState | None:
        raw = self.get_bytes(self.upload_key(upload_id, "state.json"))
        return None if raw is None else UploadState.from_json(raw)

    def save_upload(self, state: UploadState) -> None:
        raw = state.to_json()
        with s3_errors():
            self.client.put_object(
                self.bucket, self.upload_key(state.upload_id, "state.json"), io.BytesIO(raw), len(raw),
                content_type="application/json",
            )  # fmt: skip

    def open_writer(self, state: UploadState) -> S3Writer:
        return S3Writer(self, state)

    def _complete(self, state: UploadState) -> list[list[Any]]:
        """Upload the tail as the last part and complete the multipart upload; returns the parts.

        Idempotent after a crash between completing and saving the state: the blob object exists
        then (the target of a multipart upload appears only when it is completed), the multipart
        upload is gone (NoSuchUpload) and so may be the tail (NoSuchKey)."""
        key = self.blob_key(state.blob_id)
        st = state.staging
        parts = [list(p) for p in st.get("parts", [])]
        tail = st.get("tail")
        if self.exists(key):
            return parts  # completed before a crash
        try:
            if tail is not None or not parts:
                spool = Spool(self.spool_dir)
                try:
                    if tail is not None:
                        self.download_to(self.upload_key(state.upload_id, tail), spool)
                    with spool.mapped() as body:
                        etag = self.upload_part(key, st["mpu"], len(parts) + 1, body)
                    parts.append([len(parts) + 1, etag, spool.size])
                finally:
                    spool.close()
            with s3_errors():
                self.client._complete_multipart_upload(
                    self.bucket, key, st["mpu"], [Part(int(n), str(etag)) for n, etag, _ in parts]
                )
        except S3Error as e:
            if e.code in ("NoSuchUpload", "NoSuchKey") and self.exists(key):
                return parts  # completed before a crash
            raise StagedConflict(f"cannot complete upload {state.upload_id}: {e.code}") from e
        return parts

    def assemble(self, state: UploadState) -> UploadState:
        """Complete the multipart upload without publishing the blob (no ``.meta.json`` yet)."""
        if state.staging.get("assembled"):
            return state
        parts = self._complete(state)
        assembled = replace(
            state, staging={"mpu": state.staging["mpu"], "parts": parts, "tail": None, "assembled": True}
        )
        self.save_upload(assembled)
        tail = state.staging.get("tail")
        if tail is not None:
            self.remove_quietly(self.upload_key(state.upload_id, tail))
        return assembled

    def read_assembled(self, state: UploadState, chunk: int) -> Iterator[Buffer]:
        return self.read_blob(state.blob_id, 0, state.offset, chunk)

    def commit_upload(self, state: UploadState, meta: BlobMeta) -> None:
        key = self.blob_key(meta.blob_id)
        if not state.staging.get("assembled"):
            self._complete(state)
        self.put_bytes(f"{key}.meta.json", meta.to_json())
        self.remove_prefix(f"uploads/{checked_id(state.upload_id)}/", keep="state.json")

    def put_blob(self, meta: BlobMeta, data: Buffer, staging_id: str) -> None:
        """One object, then its meta object: the blob exists (stat_blob) once the second is written."""
        key = self.blob_key(meta.blob_id)
        self.put_bytes(key, bytes(data))
        self.put_bytes(f"{key}.meta.json", meta.to_json())

    def delete_upload(self, state: UploadState) -> None:
        """Abort the multipart upload; an object it was completed into (assembled, or a crash
        during the commit) goes too unless the blob was published."""
        if state.committed is None:
            key = self.blob_key(state.blob_id)
            mpu = state.staging.get("mpu")
            if mpu:
                self.abort_quietly(key, mpu)
            if self.exists(key) and not self.exists(f"{key}.meta.json"):
                self.remove_quietly(key)
        self.remove_prefix(f"uploads/{checked_id(state.upload_id)}/")

    def discard_orphan(self, upload_id: str, before: datetime) -> bool:
        """Objects under an upload's prefix without ``state.json`` (tails of a state that was
        removed half-way), once none of them changed since ``before``."""
        prefix = f"uploads/{checked_id(upload_id)}/"
        with s3_errors():
            objects = list(self.client.list_objects(self.bucket, prefix=prefix, recursive=True))
        if not objects or any((o.object_name or "").endswith("/state.json") for o in objects):
            return False
        newest = max((o.last_modified for o in objects if o.last_modified is not None), default=None)
        if newest is not None and newest >= before:
            return False
        self.remove_prefix(prefix)
        return True

    def list_uploads(self) -> Iterator[str]:
        with s3_errors():
            for o in self.client.list_objects(self.bucket, prefix="uploads/", recursive=False):
                name = (o.object_name or "").removeprefix("uploads/").rstrip("/")
                if len(name) == 32:
                    yield name

    # --- blobs ------------------------------------------------------------------------------------

    def stat_blob(self, blob_id: str) -> BlobMeta | None:
        raw = self.get_bytes(f"{self.blob_key(blob_id)}.meta.json")
        return None if raw is None else BlobMeta.from_json(raw)

    def read_blob(self, blob_id: str, offset: int, length: int, chunk: int) -> Iterator[Buffer]:
        if length == 0:
            return
        with s3_errors():
            resp = self.client.get_object(self.bucket, self.blob_key(blob_id), offset=offset, length=length)
            try:
                got = 0
                for data in resp.stream(chunk):
                    got += len(data)
                    yield data
                if got != length:
                    raise StorageUnavailable(f"blob {blob_id}: got {got} of {length} bytes")
            finally:
                resp.close()
                resp.release_conn()

    def delete_blob(self, blob_id: str) -> bool:
        key = self.blob_key(blob_id)
        existed = self.exists(f"{key}.meta.json")
        self.remove_quietly(f"{key}.meta.json")
        self.remove_quietly(key)
        return existed
