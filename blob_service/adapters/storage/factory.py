"""Builds the configured backend."""

from __future__ import annotations

from blob_service.adapters.storage.base import Storage
from blob_service.adapters.storage.local import LocalStorage
from blob_service.settings import BlobSettings


def make_storage(settings: BlobSettings) -> Storage:
    if settings.backend == "s3":
        # The S3 SDK (minio, urllib3: ~7 MiB resident) only where S3 is the backend.
        from blob_service.adapters.storage.s3 import S3Storage

        return S3Storage(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
            part_size=settings.s3_part_size,
            spool_dir=settings.spool_dir,
            create_bucket=settings.s3_create_bucket,
            pool_size=settings.max_workers,
        )
    return LocalStorage(
        settings.data_dir,
        settings.checkpoint_bytes,
        settings.fsync,
        settings.writer_wait_seconds,
        direct_io=settings.direct_io,
        direct_reads=settings.direct_reads,
    )
