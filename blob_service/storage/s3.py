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

import errno
import io
import mmap
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from blob_service.digests import Buffer
from blob_service.ids import checked_id
from blob_service.model import BlobMeta, UploadState
from blob_service.storage.base import StagedConflict, StorageUnavailable
from blob_service.storage.files import pwrite_all

_COPY_CHUNK = 1024 * 1024
#: S3 error codes that mean the store is struggling rather than that the request is wrong.
_SERVER_TROUBLE = frozenset({"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"})


@contextmanager
def s3_errors() -> Iterator[None]:
    """Transport failures become :class:`StorageUnavailable`; S3 error replies pass through."""
    try:
        yield
    except S3Error as e:
        if e.code in _SERVER_TROUBLE:
            raise StorageUnavailable(f"S3 error {e.code}: {e.message}") from e
        raise
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # the spool directory is full: not a transport failure
        raise StorageUnavailable(f"S3 unreachable: {e.__class__.__name__}: {e}") from e
    except urllib3.exceptions.HTTPError as e:
        raise StorageUnavailable(f"S3 unreachable: {e.__class__.__name__}: {e}") from e


def _missing(e: S3Error) -> bool:
    return e.code in ("NoSuchKey", "NoSuchUpload", "NoSuchObject", "ResourceNotFound")


class _Spool:
    """The part being assembled, in a temporary file."""

    def __init__(self, spool_dir: Path | None) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile(dir=spool_dir, prefix="blob-part-")  # noqa: SIM115
        self.size = 0

    def write(self, data: Buffer) -> None:
        pwrite_all(self.file.fileno(), data, self.size)
        self.size += len(data)

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.file.fileno(), length, offset)

    @contextmanager
    def mapped(self) -> Iterator[bytes]:
        """The spooled bytes as a read-only buffer (page cache, not a heap copy)."""
        if self.size == 0:
            yield b""
            return
        with mmap.mmap(self.file.fileno(), self.size, access=mmap.ACCESS_READ) as m:
            yield cast(bytes, m)

    def reset(self) -> None:
        self.file.truncate(0)
        self.size = 0

    def close(self) -> None:
        self.file.close()


class S3Writer:
    def __init__(self, storage: S3Storage, state: UploadState) -> None:
        self._s = storage
        self._uid = state.upload_id
        self._key = storage.blob_key(state.blob_id)
        st = state.staging
        self._mpu: str = st["mpu"]
        self._parts: list[list[Any]] = [list(p) for p in st.get("parts", [])]
        self._tail: str | None = st.get("tail")
        self._base = sum(int(p[2]) for p in self._parts)
        self._spool = _Spool(storage.spool_dir)
        self._superseded: list[str] = []
        try:
            if self._tail is not None:
                storage.download_to(storage.upload_key(self._uid, self._tail), self._spool)
            if self._base + self._spool.size != state.offset:
                raise StagedConflict(
                    f"upload {self._uid}: staged {self._base + self._spool.size} bytes, state says "
                    f"{state.offset}"
                )
        except BaseException:
            self._spool.close()
            raise

    @property
    def offset(self) -> int:
        return self._base + self._spool.size

    def room(self) -> int:
        return self._s.part_size - self._spool.size

    def write(self, data: Buffer) -> None:
        self._spool.write(data)

    def read_back(self, offset: int, length: int) -> bytes | None:
        if offset < self._base:
            return None
        return self._spool.read(offset - self._base, length)

    def checkpoint(self) -> dict[str, Any]:
        if self._spool.size >= self._s.part_size:
            number = len(self._parts) + 1
            with self._spool.mapped() as body:
                etag = self._s.upload_part(self._key, self._mpu, number, body)
            self._parts.append([number, etag, self._spool.size])
            self._base += self._spool.size
            self._spool.reset()
            self._replace_tail(None)
        elif self._spool.size > 0:
            name = f"tail-{uuid.uuid4().hex}"
            with self._spool.mapped() as body:
                self._s.put_bytes(self._s.upload_key(self._uid, name), body)
            self._replace_tail(name)
        return self.staging()

    def _replace_tail(self, name: str | None) -> None:
        if self._tail is not None and self._tail != name:
            self._superseded.append(self._tail)
        self._tail = name

    def staging(self) -> dict[str, Any]:
        return {"mpu": self._mpu, "parts": self._parts, "tail": self._tail}

    def saved(self) -> None:
        for name in self._superseded:
            self._s.remove_quietly(self._s.upload_key(self._uid, name))
        self._superseded = []

    def close(self) -> None:
        self._spool.close()


class S3Storage:
    name = "s3"

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = True,
        region: str = "us-east-1",
        part_size: int = 16 * 1024 * 1024,
        spool_dir: Path | None = None,
        create_bucket: bool = True,
        pool_size: int = 32,
    ) -> None:
        http = urllib3.PoolManager(
            maxsize=pool_size,
            timeout=urllib3.Timeout(connect=5.0, read=120.0),
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
            http_client=http,
        )  # fmt: skip
        self.bucket = bucket
        self.part_size = part_size
        self.spool_dir = spool_dir
        self._create_bucket = create_bucket

    # --- keys: only from validated ids ----------------------------------------------------------

    @staticmethod
    def upload_key(upload_id: str, name: str) -> str:
        return f"uploads/{checked_id(upload_id, 'upload id')}/{name}"

    @staticmethod
    def blob_key(blob_id: str) -> str:
        return f"blobs/{checked_id(blob_id, 'blob id')}"

    # --- small S3 helpers -------------------------------------------------------------------------

    def check(self) -> None:
        with s3_errors():
            if not self.client.bucket_exists(self.bucket):
                if not self._create_bucket:
                    raise StorageUnavailable(f"bucket {self.bucket} does not exist")
                self.client.make_bucket(self.bucket)

    def put_bytes(self, key: str, body: bytes) -> None:
        with s3_errors():
            self.client._put_object(self.bucket, key, body, {"Content-Type": "application/octet-stream"})

    def get_bytes(self, key: str) -> bytes | None:
        with s3_errors():
            try:
                resp = self.client.get_object(self.bucket, key)
            except S3Error as e:
                if _missing(e):
                    return None
                raise
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

    def download_to(self, key: str, spool: _Spool) -> None:
        with s3_errors():
            resp = self.client.get_object(self.bucket, key)
            try:
                for data in resp.stream(_COPY_CHUNK):
                    spool.write(data)
            finally:
                resp.close()
                resp.release_conn()

    def upload_part(self, key: str, mpu: str, number: int, body: bytes) -> str:
        with s3_errors():
            return self.client._upload_part(self.bucket, key, body, None, mpu, number)

    def remove_quietly(self, key: str) -> None:
        with s3_errors():
            try:
                self.client.remove_object(self.bucket, key)
            except S3Error as e:
                if not _missing(e):
                    raise

    def _exists(self, key: str) -> bool:
        with s3_errors():
            try:
                self.client.stat_object(self.bucket, key)
                return True
            except S3Error as e:
                if _missing(e):
                    return False
                raise

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
            self._abort_quietly(key, mpu)
            raise
        return state

    def _abort_quietly(self, key: str, mpu: str) -> None:
        with s3_errors():
            try:
                self.client._abort_multipart_upload(self.bucket, key, mpu)
            except S3Error as e:
                if not _missing(e):
                    raise

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
        if self._exists(key):
            return parts  # completed before a crash
        try:
            if tail is not None or not parts:
                spool = _Spool(self.spool_dir)
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
            if e.code in ("NoSuchUpload", "NoSuchKey") and self._exists(key):
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
        self._remove_prefix(f"uploads/{checked_id(state.upload_id)}/", keep="state.json")

    def delete_upload(self, state: UploadState) -> None:
        """Abort the multipart upload; an object it was completed into (assembled, or a crash
        during the commit) goes too unless the blob was published."""
        if state.committed is None:
            key = self.blob_key(state.blob_id)
            mpu = state.staging.get("mpu")
            if mpu:
                self._abort_quietly(key, mpu)
            if self._exists(key) and not self._exists(f"{key}.meta.json"):
                self.remove_quietly(key)
        self._remove_prefix(f"uploads/{checked_id(state.upload_id)}/")

    def _remove_prefix(self, prefix: str, keep: str | None = None) -> None:
        with s3_errors():
            names = [
                o.object_name
                for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if o.object_name and (keep is None or not o.object_name.endswith("/" + keep))
            ]
            if names:
                errors = self.client.remove_objects(self.bucket, [DeleteObject(n) for n in names])
                for err in errors:
                    raise StorageUnavailable(f"cannot delete {err.name}: {err.message}")

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
        self._remove_prefix(prefix)
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
        existed = self._exists(f"{key}.meta.json")
        self.remove_quietly(f"{key}.meta.json")
        self.remove_quietly(key)
        return existed
