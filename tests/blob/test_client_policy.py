"""The blob client's retry policy — what is transient — through the public API of blob_client,
against a real blob service: the sync client resumes after a transient refusal, gives up at once on
a final one, and the async client keeps a failed source's bytes and repeats only what may be."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from grpc import aio

from blob_client import AsyncBlobClient, BlobClient, BlobError, RetryPolicy, UploadSpec
from blob_client.policy import storage_unreachable
from blob_service.api.server import create_server
from blob_service.handlers.operations import BlobService
from blob_service.settings import MIB
from tests.blob.conftest import channel_to, settings_for
from tests.blob.data import expected, payload, pieces
from tests.components import S3Endpoint
from tests.replication.stacks import wait_for


@dataclass(frozen=True)
class Recording(RetryPolicy):
    """The ordinary policy, recording each decision; ``before_retry`` runs in place of a wait."""

    resumed: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)
    before_retry: list[threading.Event] = field(default_factory=list)

    def may_resume(self, err: BlobError, failures: int) -> bool:
        self.resumed.append(err.reason)
        return super().may_resume(err, failures)

    def may_repeat(self, err: BlobError, failures: int) -> bool:
        self.repeated.append(err.reason)
        return super().may_repeat(err, failures)

    def wait(self, failures: int) -> float:
        self.waits.append(failures)
        for event in self.before_retry:
            event.set()
        return 0.0


def test_too_many_uploads_is_transient_and_the_upload_resumes(
    backend: str, tmp_path: Path, s3: S3Endpoint | None
) -> None:
    """One upload stream allowed: a second upload is refused (TooManyUploads), waits, and goes
    through once the first stream ended."""
    srv, port, _health, svc = create_server(settings_for(backend, tmp_path, s3, max_upload_streams=1))
    srv.start()
    try:
        with channel_to(port) as ch:
            holder = BlobClient(ch).create_upload(UploadSpec(label="holder"))
            release = threading.Event()

            def slow() -> Iterator[bytes]:
                yield b"h" * 1000
                release.wait(10)

            writer = threading.Thread(target=holder.write, args=(slow(),))
            writer.start()
            wait_for("the first stream", lambda: svc.streams.received_for(holder.upload_id) >= 1, timeout=10)
            policy = Recording(retries=3, before_retry=[release])
            data = payload(3 * MIB + 5, seed=7)
            info = BlobClient(ch, policy=policy).upload(pieces(data), **expected(data))
            writer.join(10)
            assert info.size == len(data) and info.sha1 == expected(data)["sha1"]
            assert policy.resumed[0] == "TooManyUploads"
            assert policy.waits[0] == 1
            assert holder.status().committed_offset == 1000
    finally:
        srv.stop(0).wait()
        svc.stop()


def test_a_final_refusal_is_neither_resumed_nor_repeated(server: tuple[int, BlobService]) -> None:
    policy = Recording(retries=5)
    data = payload(5000, seed=3)
    with channel_to(server[0]) as ch:
        client = BlobClient(ch, policy=policy)
        upload = client.create_upload(UploadSpec(max_size=1000))
        with pytest.raises(BlobError) as e:
            upload.write_resumably([data])
        assert e.value.reason == "SizeExceeded"
        assert policy.resumed == ["SizeExceeded"] and policy.waits == []
        upload.cancel()
        with pytest.raises(BlobError) as e:
            upload.status()
        assert e.value.reason == "UploadNotFound"
        assert policy.repeated == ["UploadNotFound"] and policy.waits == []
        # A wrong digest is final at commit: the commit is not repeated.
        with pytest.raises(BlobError) as e:
            client.upload([data], sha1="0" * 40)
        assert e.value.reason == "DigestMismatch"
        assert policy.repeated == ["UploadNotFound", "DigestMismatch"] and policy.waits == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_service_is_repeated_then_reported() -> None:
    """Transport failures are the repeatable kind, for the sync and the async client alike."""
    port = _closed_port()
    sync_policy = Recording(retries=2)
    with channel_to(port) as ch, pytest.raises(BlobError) as e:
        BlobClient(ch, timeout=5, policy=sync_policy).upload_of("0" * 32)
    assert e.value.reason == "Unavailable" and storage_unreachable(e.value)
    assert sync_policy.repeated == ["Unavailable"] * 3 and sync_policy.waits == [1, 2]

    async def run() -> tuple[BlobError, BlobError | None]:
        async with aio.insecure_channel(f"127.0.0.1:{port}") as ach:
            blobs = AsyncBlobClient(ach, timeout=5, policy=async_policy)
            with pytest.raises(BlobError) as e:
                await blobs.upload_of("0" * 32)
            lenient: BlobError | None = None
            try:
                await blobs.delete_orphans(["1" * 32])  # best effort: logged, not raised
            except BlobError as err:
                lenient = err
            with pytest.raises(BlobError) as strict:
                await blobs.delete_orphans(["1" * 32], strict=True)
            assert storage_unreachable(strict.value)
            return e.value, lenient

    async_policy = Recording(retries=1)
    err, lenient = asyncio.run(run())
    assert err.reason == "Unavailable" and lenient is None
    assert async_policy.repeated == ["Unavailable"] * 6 and async_policy.waits == [1, 1, 1]


def test_async_upload_keeps_the_bytes_before_a_failed_source(server: tuple[int, BlobService]) -> None:
    """A source failing mid-way ends the stream cleanly: the whole chunks it gave are kept (a partial
    chunk is not sent), and the upload resumes at the committed offset (as tus does)."""
    data = payload(2 * MIB + 333, seed=11)
    cut = MIB + 100

    async def failing() -> AsyncIterator[bytes]:
        yield data[:cut]
        raise ConnectionResetError("client went away")

    async def rest() -> AsyncIterator[bytes]:
        yield data[MIB:]

    async def run() -> tuple[int, BaseException | None, int, str]:
        async with aio.insecure_channel(f"127.0.0.1:{server[0]}") as ach:
            blobs = AsyncBlobClient(ach, timeout=10, transfer_timeout=30, chunk_bytes=MIB)
            upload = await blobs.create_upload(
                UploadSpec(expected_size=len(data), sha1=expected(data)["sha1"])
            )
            out = await upload.write(failing())
            again = await blobs.upload_of(upload.upload_id)
            done = await again.write(rest(), again.info.committed_offset)
            info = await again.commit()
            reader = await blobs.open(info.blob_id)
            got = b"".join([bytes(c) async for c in reader.chunks()])
            assert got == data
            return out.committed_offset, out.source_error, done.committed_offset, info.sha1

    committed, error, end, sha1 = asyncio.run(run())
    assert committed == MIB and isinstance(error, ConnectionResetError)
    assert end == len(data) and sha1 == expected(data)["sha1"]
