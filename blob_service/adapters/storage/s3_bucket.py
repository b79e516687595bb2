"""The S3 bucket as the S3 backend (:mod:`.s3`) uses it: object keys built only from validated ids,
small object reads and writes, multipart parts, and S3 failures turned into the storage errors.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from blob_service.adapters.storage.base import StorageUnavailable
from blob_service.domain.digests import Buffer
from blob_service.domain.ids import checked_id

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


def is_missing(e: S3Error) -> bool:
    """An S3 error that says the object or multipart upload does not exist."""
    return e.code in ("NoSuchKey", "NoSuchUpload", "NoSuchObject", "ResourceNotFound")


class Sink(Protocol):
    """Where :meth:`S3Bucket.download_to` writes an object's bytes (a spool file)."""

    def write(self, data: Buffer) -> None: ...


class S3Bucket:
    """One bucket through the ``minio`` SDK (a pooled HTTP client with retries), and the size and
    spool directory of the multipart parts its uploads are written in."""

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
                if is_missing(e):
                    return None
                raise
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

    def download_to(self, key: str, sink: Sink) -> None:
        with s3_errors():
            resp = self.client.get_object(self.bucket, key)
            try:
                for data in resp.stream(_COPY_CHUNK):
                    sink.write(data)
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
                if not is_missing(e):
                    raise

    def exists(self, key: str) -> bool:
        with s3_errors():
            try:
                self.client.stat_object(self.bucket, key)
                return True
            except S3Error as e:
                if is_missing(e):
                    return False
                raise

    def abort_quietly(self, key: str, mpu: str) -> None:
        with s3_errors():
            try:
                self.client._abort_multipart_upload(self.bucket, key, mpu)
            except S3Error as e:
                if not is_missing(e):
                    raise

    def remove_prefix(self, prefix: str, keep: str | None = None) -> None:
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
