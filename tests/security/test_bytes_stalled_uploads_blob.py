"""Issue 10 item 6, blob-service hop: stalled upload streams cannot take every handler thread.

Each WriteChunks stream holds one of the blob service's handler threads while it waits for bytes.
Streams beyond ``max_upload_streams`` are refused at once (TooManyUploads), so downloads still get
threads; and a stream idle for ``upload_idle_seconds`` is cut, keeping what it sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from imgapi.v1 import blob_pb2

from blob_client import BlobClient, BlobError
from blob_client.wire import WRITE_CHUNKS, encode_write_chunk
from blob_service.api.server import create_server
from blob_service.handlers.operations import BlobService
from blob_service.settings import BlobSettings
from tests.blob.conftest import channel_to


def _wait_for(what: str, cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _stalled(upload_id: str, release: threading.Event) -> Iterator[bytes]:
    """10 bytes of an upload, then nothing until ``release`` is set."""
    yield encode_write_chunk(b"0123456789", upload_id=upload_id, offset=0)
    release.wait()


@pytest.fixture
def blob(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[int, BlobService]]:
    idle = getattr(request, "param", 60.0)
    settings = BlobSettings(
        bind="127.0.0.1:0",
        data_dir=tmp_path / "data",
        fsync=False,
        max_workers=6,
        max_upload_streams=3,
        upload_idle_seconds=idle,
    )
    srv, port, _health, svc = create_server(settings)
    srv.start()
    try:
        yield port, svc
    finally:
        srv.stop(0).wait()
        svc.stop()


def test_stalled_streams_beyond_the_cap_are_refused_and_downloads_still_served(
    blob: tuple[int, BlobService],
) -> None:
    port, svc = blob
    release = threading.Event()
    with channel_to(port) as ch:
        client = BlobClient(ch, timeout=10)
        other = client.upload([b"another image file"])
        write = ch.stream_unary(
            WRITE_CHUNKS, request_serializer=None, response_deserializer=blob_pb2.UploadStatus.FromString
        )
        calls = []
        try:
            for _ in range(3):
                uid = client.start_upload(expected_size=10 * 1024 * 1024).upload_id
                calls.append(write.future(_stalled(uid, release), timeout=60))
            _wait_for("3 upload streams in progress", lambda: svc.streams.active == 3)

            extra = client.start_upload().upload_id
            with pytest.raises(grpc.RpcError) as refused:
                write(_stalled(extra, release), timeout=10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert BlobError.from_rpc_error(refused.value).reason == "TooManyUploads"

            # Every stalled stream is still open, and a download answers anyway.
            assert b"".join(client.read(other.blob_id)) == b"another image file"
            assert client.stat(other.blob_id).size == len(b"another image file")
            assert not any(c.done() for c in calls)
        finally:
            release.set()
        for c in calls:
            assert c.result(timeout=10).committed_offset == 10


@pytest.mark.parametrize("blob", [0.3], indirect=True)
def test_idle_stream_is_cut_and_keeps_its_bytes(blob: tuple[int, BlobService]) -> None:
    port, svc = blob
    release = threading.Event()
    with channel_to(port) as ch:
        client = BlobClient(ch, timeout=10)
        write = ch.stream_unary(
            WRITE_CHUNKS, request_serializer=None, response_deserializer=blob_pb2.UploadStatus.FromString
        )
        uids = [client.start_upload(expected_size=1000).upload_id for _ in range(3)]
        try:
            calls = [write.future(_stalled(uid, release), timeout=60) for uid in uids]
            for c in calls:
                # cut by the service long before the call's own 60 s deadline
                exc = c.exception(timeout=15)  # type: ignore[call-arg]
                assert isinstance(exc, grpc.RpcError)
                assert exc.code() == grpc.StatusCode.CANCELLED
        finally:
            release.set()
        _wait_for("the cut streams to release their threads", lambda: svc.streams.active == 0)
        for uid in uids:
            assert client.get_upload(uid).committed_offset == 10  # what was sent is kept
        # the threads are free again: a whole upload goes through
        assert client.upload([b"x" * 100]).size == 100


def test_stalled_download_is_cut_and_frees_its_thread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that stops taking a download's bytes holds the service's thread (flow control
    blocks the send): after the download idle time the stream is cut; the client resumes."""
    settings = BlobSettings(
        bind="127.0.0.1:0",
        data_dir=tmp_path / "data",
        fsync=False,
        max_workers=4,
        download_idle_seconds=0.5,
    )
    srv, port, _health, svc = create_server(settings)
    srv.start()
    caplog.set_level(logging.WARNING, logger="blob_service.handlers.stream_guard")
    try:
        with channel_to(port) as ch:
            client = BlobClient(ch, timeout=30, retry_delay=0.05)
            data = bytes(range(256)) * (256 * 1024)  # 64 MiB: more than the HTTP/2 windows hold
            info = client.upload([data[i : i + 1024 * 1024] for i in range(0, len(data), 1024 * 1024)])
            _, chunks = client.open(info.blob_id)
            first = next(chunks)  # then the client stops reading
            _wait_for("the download to be open", lambda: svc.streams.downloads == 1)
            _wait_for("the stalled download to be cut", lambda: svc.streams.downloads == 0)
            cuts = [r.getMessage() for r in caplog.records if "took nothing" in r.getMessage()]
            assert len(cuts) == 1 and info.blob_id in cuts[0]  # cut, not finished
            # the client continues where it stopped, on a new stream
            assert first + b"".join(chunks) == data
    finally:
        srv.stop(0).wait()
        svc.stop()
