"""Blob service configuration: ``IMGAPI_BLOB_*`` environment variables, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imgapi_common.internal_auth import check_bind, token_field
from imgapi_common.observability import refuse

MIB = 1024 * 1024
GIB = 1024 * MIB

#: IMGAPI's cap on an image file: 20 GiB.
DEFAULT_MAX_BLOB_SIZE = 20 * GIB
#: S3 limits on multipart uploads.
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PART_SIZE = 5 * GIB
S3_MAX_PARTS = 10_000


class BlobSettings(BaseSettings):
    """Every knob of the blob service. Construct with keywords in tests, from the env in production."""

    model_config = SettingsConfigDict(env_prefix="IMGAPI_BLOB_", extra="forbid", populate_by_name=True)

    bind: str = "127.0.0.1:8502"
    #: The stack's shared secret (IMGAPI_INTERNAL_TOKEN): every call but health checks must carry
    #: it. Required when ``bind`` is not a loopback address (docs/security.md).
    internal_token: SecretStr = token_field()
    backend: Literal["local", "s3"] = "local"
    #: Local backend: where blobs and upload sessions live.
    data_dir: Path = Path("var/blobs")
    #: Where the S3 backend spools the part being assembled (default: the system temp dir).
    spool_dir: Path | None = None

    s3_endpoint: str = ""  # host:port
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "imgapi-blobs"
    s3_secure: bool = True
    s3_region: str = "us-east-1"
    s3_create_bucket: bool = True
    #: Size of every S3 part but the last; parts are what a crash can lose, and what is spooled.
    s3_part_size: int = Field(default=16 * MIB, ge=S3_MIN_PART_SIZE, le=S3_MAX_PART_SIZE)

    #: Largest blob accepted (IMGAPI: 20 GiB).
    max_blob_size: int = Field(default=DEFAULT_MAX_BLOB_SIZE, gt=0)
    #: Local backend: bytes written between two durable checkpoints (fsync + state) of a stream.
    checkpoint_bytes: int = Field(default=32 * MIB, ge=64 * 1024)
    fsync: bool = True
    #: Local backend: write upload bytes with O_DIRECT from an aligned buffer instead of through the
    #: page cache (falls back to buffered writes where the filesystem refuses O_DIRECT).
    direct_io: bool = True
    #: Local backend: how many reads at a time may use O_DIRECT read-ahead (2 threads and 16 MiB
    #: each); further concurrent reads go through the page cache.
    direct_reads: int = Field(default=4, ge=0)
    #: Save the digest state with every checkpoint (else a resume re-reads the stored bytes, which
    #: only the local backend can do).
    persist_digest_state: bool = True
    #: Inactivity after which an upload expires (seconds), and how often expired ones are reaped.
    upload_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    reaper_interval_seconds: float = Field(default=300.0, gt=0)
    #: How long a second writer waits for the upload lock before UploadBusy.
    writer_wait_seconds: float = Field(default=10.0, ge=0)
    #: Size of ReadBlob messages (1 MiB moves ~1 GB/s through gRPC Python).
    read_chunk_bytes: int = Field(default=1 * MIB, ge=4096, le=4 * MIB)
    max_workers: int = Field(default=32, ge=2)
    #: Upload (WriteChunks) streams served at a time; each holds a handler thread, so this stays
    #: below ``max_workers`` to leave threads for downloads and metadata calls. Further streams
    #: are refused with TooManyUploads. Default: half of ``max_workers``.
    max_upload_streams: int | None = Field(default=None, ge=1)
    #: An upload stream that waits this long for the client's next message is cut (seconds).
    upload_idle_seconds: float = Field(default=60.0, gt=0)
    #: A download stream whose client takes no message for this long is cut (seconds).
    download_idle_seconds: float = Field(default=60.0, gt=0)
    grace_seconds: float = Field(default=10.0, ge=0)
    log_level: str = "INFO"
    #: Log one line per RPC (method, status, duration, request id).
    access_log: bool = False
    #: Port of the Prometheus ``/metrics`` endpoint (0 = disabled).
    metrics_port: int = Field(default=0, ge=0)

    @property
    def upload_streams(self) -> int:
        """The effective cap on concurrent upload streams."""
        return self.max_upload_streams or max(1, self.max_workers // 2)

    @model_validator(mode="after")
    def _coherent(self) -> BlobSettings:
        check_bind(self.bind, self.internal_token, "IMGAPI_BLOB_BIND")
        if self.upload_streams >= self.max_workers:
            raise ValueError(
                f"IMGAPI_BLOB_MAX_UPLOAD_STREAMS={self.upload_streams} must be below "
                f"IMGAPI_BLOB_MAX_WORKERS={self.max_workers} (downloads need threads too)"
            )
        if self.backend == "s3":
            missing = [
                name
                for name, value in (
                    ("IMGAPI_BLOB_S3_ENDPOINT", self.s3_endpoint),
                    ("IMGAPI_BLOB_S3_ACCESS_KEY", self.s3_access_key),
                    ("IMGAPI_BLOB_S3_SECRET_KEY", self.s3_secret_key.get_secret_value()),
                    ("IMGAPI_BLOB_S3_BUCKET", self.s3_bucket),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"backend s3 needs {', '.join(missing)}")
            if not self.persist_digest_state:
                raise ValueError(
                    "backend s3 needs IMGAPI_BLOB_PERSIST_DIGEST_STATE=true (S3 parts cannot be re-read)"
                )
            if self.s3_part_size * S3_MAX_PARTS < self.max_blob_size:
                raise ValueError(
                    f"IMGAPI_BLOB_S3_PART_SIZE={self.s3_part_size} cannot hold "
                    f"IMGAPI_BLOB_MAX_BLOB_SIZE={self.max_blob_size} in {S3_MAX_PARTS} parts "
                    f"(need >= {-(-self.max_blob_size // S3_MAX_PARTS)})"
                )
        return self


def load_settings() -> BlobSettings:
    """Settings from the environment, or a readable start-up error naming what is wrong."""
    try:
        return BlobSettings()
    except ValidationError as e:
        lines = [
            f"  IMGAPI_BLOB_{'_'.join(str(p) for p in err['loc']).upper() or '*'}: {err['msg']}"
            for err in e.errors()
        ]
        refuse("blob", "invalid blob service settings:\n" + "\n".join(lines))
        raise SystemExit(2) from None
