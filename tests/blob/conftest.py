"""Blob fixtures: every backend test runs against the local directory and S3 (moto or MinIO)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from blob_client import BlobClient
from blob_service.adapters.storage import Storage, make_storage
from blob_service.api.server import create_server
from blob_service.domain.digests import exportable
from blob_service.handlers.operations import BlobService
from blob_service.settings import MIB, BlobSettings
from imgapi_common.grpc_server import MAX_MESSAGE_BYTES
from tests.components import S3Endpoint, missing

#: Small enough for fast tests, big enough that a 12 MiB blob spans several S3 parts.
PART = 5 * MIB


def settings_for(backend: str, tmp_path: Path, s3: S3Endpoint | None, **extra: object) -> BlobSettings:
    base: dict[str, object] = {
        "bind": "127.0.0.1:0",
        "backend": backend,
        "data_dir": tmp_path / "data",
        "spool_dir": tmp_path,
        "checkpoint_bytes": 2 * MIB,
        "s3_part_size": PART,
        "max_blob_size": 64 * MIB,
        "fsync": False,
        "writer_wait_seconds": 2.0,
        "max_workers": 8,
    }
    if backend == "s3":
        assert s3 is not None
        base |= {
            "s3_endpoint": s3.endpoint,
            "s3_access_key": s3.access_key,
            "s3_secret_key": s3.secret_key,
            "s3_secure": s3.secure,
            "s3_region": s3.region,
            "s3_bucket": f"blob-test-{uuid.uuid4().hex[:16]}",
        }
    return BlobSettings(**(base | extra))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def libcrypto() -> None:
    """Saved digest states need libcrypto's low-level API (SHA1_Init...): without it the tests
    that need it are skipped loudly, and fail under CI=true (never a silent skip there)."""
    if not exportable():
        missing("libcrypto", "libcrypto's low-level digest API cannot be loaded")


#: Marks a test that needs :func:`libcrypto`.
needs_libcrypto = pytest.mark.usefixtures("libcrypto")


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def s3(backend: str, request: pytest.FixtureRequest) -> S3Endpoint | None:
    if backend != "s3":
        return None
    ep: S3Endpoint = request.getfixturevalue("s3_endpoint")
    return ep


@pytest.fixture
def settings(backend: str, tmp_path: Path, s3: S3Endpoint | None) -> BlobSettings:
    return settings_for(backend, tmp_path, s3)


class Clock:
    """A clock the tests move forward (to expire uploads)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def storage(settings: BlobSettings) -> Storage:
    st = make_storage(settings)
    st.check()
    return st


@pytest.fixture
def service(storage: Storage, settings: BlobSettings, clock: Clock) -> BlobService:
    return BlobService(storage, settings, clock)


def channel_to(port: int) -> grpc.Channel:
    return grpc.insecure_channel(
        f"127.0.0.1:{port}",
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )


@pytest.fixture
def server(settings: BlobSettings) -> Iterator[tuple[int, BlobService]]:
    srv, port, _health, svc = create_server(settings)
    srv.start()
    try:
        yield port, svc
    finally:
        srv.stop(0).wait()
        svc.stop()


@pytest.fixture
def client(server: tuple[int, BlobService]) -> Iterator[BlobClient]:
    with channel_to(server[0]) as ch:
        yield BlobClient(ch, retry_delay=0.05)
