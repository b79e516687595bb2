"""The blob service over a real channel: statuses, the client, disconnects, restarts, concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from imgapi.v1 import blob_pb2, blob_pb2_grpc

from blob_client import PUT_BLOB_MAX_BYTES, BlobClient, UploadSpec
from blob_client.errors import DOMAIN, BlobError
from blob_service.api.server import SERVICE_NAME, create_server
from blob_service.handlers.operations import BlobService
from blob_service.settings import MIB, BlobSettings
from tests.blob.conftest import PART, channel_to
from tests.blob.data import content_md5, digests, expected, payload, pieces


def error_info(exc: grpc.RpcError) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return exc.code(), info  # type: ignore[attr-defined]


def test_health_and_roundtrip(client: BlobClient, server: tuple[int, BlobService]) -> None:
    with channel_to(server[0]) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        resp = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    data = payload(2 * PART + 99, seed=10)
    d = expected(data)
    info = client.upload(pieces(data, 3 * MIB + 1), expected_size=len(data), **d)
    assert (info.size, info.sha1, info.md5, info.sha256) == (len(data), d["sha1"], d["md5"], d["sha256"])
    assert info.content_md5 == content_md5(data)
    assert client.stat(info.blob_id) == info
    got_info, chunks = client.open(info.blob_id)
    assert got_info == info
    got = list(chunks)
    assert b"".join(got) == data
    assert max(len(c) for c in got) <= MIB
    assert b"".join(client.read(info.blob_id, PART - 1, 3)) == data[PART - 1 : PART + 2]
    assert client.delete(info.blob_id) is True
    with pytest.raises(BlobError) as e:
        list(client.read(info.blob_id))
    assert e.value.reason == "BlobNotFound"


def test_rich_error_statuses(client: BlobClient, server: tuple[int, BlobService]) -> None:
    up = client.start_upload()
    client.write(up.upload_id, 0, [b"x" * 10])
    with channel_to(server[0]) as ch:
        stub = blob_pb2_grpc.BlobServiceStub(ch)
        msgs = [blob_pb2.WriteChunkRequest(upload_id=up.upload_id, offset=20, data=b"y")]
        with pytest.raises(grpc.RpcError) as exc:
            stub.WriteChunks(iter(msgs))
        code, info = error_info(exc.value)
        assert (code, info.domain, info.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            DOMAIN,
            "OffsetMismatch",
        )
        assert info.metadata["current_offset"] == "10"
        bad = [blob_pb2.WriteChunkRequest(upload_id=up.upload_id, offset=10, data=b"abc", crc32=1)]
        with pytest.raises(grpc.RpcError) as exc:
            stub.WriteChunks(iter(bad))
        code, info = error_info(exc.value)
        assert (code, info.reason, info.metadata["current_offset"]) == (
            grpc.StatusCode.DATA_LOSS,
            "ChunkChecksum",
            "10",
        )
        with pytest.raises(grpc.RpcError) as exc:
            stub.StatBlob(blob_pb2.StatBlobRequest(blob_id="../../etc/passwd"))
        code, info = error_info(exc.value)
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidId")
        with pytest.raises(grpc.RpcError) as exc:
            stub.CommitUpload(blob_pb2.CommitUploadRequest(upload_id=up.upload_id, expected_size=11))
        code, info = error_info(exc.value)
        assert (code, info.reason, info.metadata["actual"]) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "SizeMismatch",
            "10",
        )
    with pytest.raises(BlobError) as e:
        client.get_upload(up.upload_id)
    assert e.value.reason == "UploadNotFound"


def test_wrong_digest_at_commit_leaves_nothing(client: BlobClient, server: tuple[int, BlobService]) -> None:
    data = payload(PART + 5, seed=11)
    with pytest.raises(BlobError) as e:
        client.upload(pieces(data), sha256="0" * 64)
    assert (e.value.reason, e.value.metadata["digest"]) == ("DigestMismatch", "sha256")
    storage = server[1].storage
    assert list(storage.list_uploads()) == []


def test_repeated_chunk_and_ranges_over_grpc(client: BlobClient) -> None:
    data = payload(3 * MIB, seed=12)
    up = client.start_upload()
    assert client.write(up.upload_id, 0, [data[: 2 * MIB]]) == 2 * MIB
    assert client.write(up.upload_id, MIB, [data[MIB:]]) == 3 * MIB  # ack lost: resent
    info = client.commit(up.upload_id, sha1=digests(data)["sha1"])
    with pytest.raises(BlobError) as e:
        list(client.read(info.blob_id, 3 * MIB - 1, 2))
    assert (e.value.reason, e.value.metadata["size"]) == ("InvalidRange", str(3 * MIB))


def test_client_disconnect_mid_stream_then_resume(
    client: BlobClient, server: tuple[int, BlobService]
) -> None:
    data = payload(4 * MIB, seed=13)
    up = client.start_upload(expected_size=len(data))
    sent = threading.Event()
    release = threading.Event()

    def messages() -> Iterator[blob_pb2.WriteChunkRequest]:
        for i, piece in enumerate(pieces(data[: 3 * MIB])):
            yield blob_pb2.WriteChunkRequest(upload_id=up.upload_id, offset=i * MIB, data=piece)
        sent.set()
        release.wait(10)

    streams = server[1].streams
    with channel_to(server[0]) as ch:
        call = blob_pb2_grpc.BlobServiceStub(ch).WriteChunks.future(messages())
        assert sent.wait(10)
        # the service took all 3 messages (so it applied the first 2): a state, not a guessed time
        deadline = time.monotonic() + 10
        while streams.received_for(up.upload_id) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert streams.received_for(up.upload_id) == 3
        call.cancel()  # type: ignore[no-untyped-call]  # the client goes away mid-stream
        release.set()
    # the service keeps what it received; wait until it has settled the upload
    deadline = time.monotonic() + 10
    while streams.active and time.monotonic() < deadline:
        time.sleep(0.01)
    at = client.get_upload(up.upload_id).committed_offset
    assert 2 * MIB <= at <= 3 * MIB
    assert client.write(up.upload_id, at, [data[at:]]) == len(data)
    info = client.commit(up.upload_id, **expected(data))
    assert b"".join(client.read(info.blob_id)) == data


def test_upload_survives_a_server_restart(settings: BlobSettings) -> None:
    """BlobClient.upload resumes transparently when the service goes away and comes back.

    The source holds back its last half until the restart has begun, so the restart always falls
    in the middle of the upload; the test checks that it did."""
    srv, port, _, svc = create_server(settings)
    srv.start()
    data = payload(16 * MIB, seed=14)
    state: dict[str, object] = {"srv": srv, "svc": svc}
    restarting = threading.Event()
    uploaded = threading.Event()
    seen: dict[str, object] = {}

    def restart_when_half_done() -> None:
        deadline = time.monotonic() + 20
        offset = 0
        while time.monotonic() < deadline:  # wait for a state: 5 MiB durable
            uploads = list(svc.storage.list_uploads())
            st = svc.storage.load_upload(uploads[0]) if uploads else None
            if st is not None and st.offset >= 5 * MIB:
                offset = st.offset
                break
            time.sleep(0.005)
        seen.update(offset=offset, finished_before_restart=uploaded.is_set())
        restarting.set()
        srv.stop(0).wait()
        while svc.streams.active:  # the interrupted stream settles (checkpoints) first
            time.sleep(0.01)
        svc.stop()
        s2, _, _, svc2 = create_server(settings.model_copy(update={"bind": f"127.0.0.1:{port}"}))
        s2.start()
        state.update(srv=s2, svc=svc2)

    def held_back(chunks: Iterator[bytes]) -> Iterator[bytes]:
        sent = 0
        for c in chunks:
            if sent >= 8 * MIB:
                restarting.wait(30)
            sent += len(c)
            yield c

    restarter = threading.Thread(target=restart_when_half_done)
    restarter.start()
    try:
        with channel_to(port) as ch:
            client = BlobClient(ch, retries=20, retry_delay=0.05)
            info = client.upload(held_back(pieces(data, 512 * 1024)), **expected(data))
            uploaded.set()
            restarter.join()
            assert seen["finished_before_restart"] is False  # the restart interrupted the upload
            assert 5 * MIB <= int(seen["offset"]) <= 8 * MIB  # type: ignore[call-overload]
            assert info.size == len(data)
            assert b"".join(client.read(info.blob_id)) == data
    finally:
        restarting.set()
        restarter.join()
        state["srv"].stop(0)  # type: ignore[attr-defined]
        state["svc"].stop()  # type: ignore[attr-defined]


def test_concurrent_writers_over_grpc(client: BlobClient) -> None:
    data = payload(6 * MIB, seed=15)
    up = client.start_upload()
    outcomes: list[str] = []

    def writer() -> None:
        for _ in range(30):
            at = client.get_upload(up.upload_id).committed_offset
            if at >= len(data):
                return
            try:
                client.write(up.upload_id, at, pieces(data[at:], 256 * 1024))
                outcomes.append("ok")
            except BlobError as e:
                outcomes.append(e.reason)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(outcomes) <= {"ok", "OffsetMismatch", "UploadBusy"}
    info = client.commit(up.upload_id, expected_size=len(data), **expected(data))
    assert b"".join(client.read(info.blob_id)) == data


@pytest.mark.parametrize("crafted", ["../../etc/passwd", "/etc/passwd", "\x00" * 32, "ü" * 32])
def test_crafted_ids_over_grpc(client: BlobClient, crafted: str) -> None:
    for call in (
        lambda: client.stat(crafted),
        lambda: client.delete(crafted),
        lambda: list(client.read(crafted)),
        lambda: client.get_upload(crafted),
        lambda: client.write(crafted, 0, [b"x"]),
        lambda: client.commit(crafted),
        lambda: client.abort(crafted),
    ):
        with pytest.raises(BlobError) as e:
            call()
        assert e.value.reason == "InvalidId"


def test_expired_upload_is_reaped_by_the_background_reaper(settings: BlobSettings) -> None:
    srv, port, _, svc = create_server(settings.model_copy(update={"reaper_interval_seconds": 0.2}))
    srv.start()
    try:
        with channel_to(port) as ch:
            client = BlobClient(ch)
            up = client.start_upload(ttl_seconds=1)
            client.write(up.upload_id, 0, [b"abandoned"])
            deadline = time.monotonic() + 10
            while list(svc.storage.list_uploads()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert list(svc.storage.list_uploads()) == []
            with pytest.raises(BlobError) as e:
                client.write(up.upload_id, 9, [b"more"])
            assert e.value.reason == "UploadNotFound"
    finally:
        srv.stop(0)
        svc.stop()


def test_reader_stopping_early_releases_the_stream(client: BlobClient) -> None:
    data = payload(4 * MIB, seed=16)
    info = client.upload(pieces(data))
    reader = client.read(info.blob_id)
    assert next(reader) == data[:MIB]
    reader.close()  # e.g. the HTTP client went away
    assert b"".join(client.read(info.blob_id, MIB, 1)) == data[MIB : MIB + 1]
    assert client.delete(info.blob_id)


def test_malformed_write_chunks_request_is_invalid_and_changes_nothing(
    client: BlobClient, server: tuple[int, BlobService]
) -> None:
    """WriteChunks parses requests by hand (no copy of the data): malformed bytes are refused."""
    up = client.start_upload()
    client.write(up.upload_id, 0, [b"a" * 10])
    with channel_to(server[0]) as ch:
        raw = ch.stream_unary(
            "/imgapi.v1.BlobService/WriteChunks",
            request_serializer=None,
            response_deserializer=blob_pb2.UploadStatus.FromString,
        )
        good_head = blob_pb2.WriteChunkRequest(upload_id=up.upload_id, offset=10).SerializeToString()
        for bad in (b"\x1a\x05abc", good_head + b"\x1a\x09short"):
            with pytest.raises(grpc.RpcError) as exc:
                raw(iter([bad]))
            code, info = error_info(exc.value)
            assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidRequest")
            assert "malformed WriteChunkRequest" in str(exc.value.details())  # type: ignore[attr-defined]
    assert client.get_upload(up.upload_id).committed_offset == 10


# --- PutBlob: a small blob in one call ------------------------------------------------------------


def _uploads_left(service: BlobService) -> list[str]:
    """Uploads still open (a committed upload keeps only its record, as after CommitUpload)."""
    open_ = []
    for upload_id in service.storage.list_uploads():
        state = service.storage.load_upload(upload_id)
        if state is not None and state.committed is None:
            open_.append(upload_id)
    return open_


def test_put_blob_stores_and_verifies_like_an_upload(
    client: BlobClient, server: tuple[int, BlobService]
) -> None:
    data = payload(PUT_BLOB_MAX_BYTES, seed=21)
    d = expected(data)
    info = client.put(UploadSpec(expected_size=len(data), **d), data)
    assert (info.size, info.sha1, info.md5, info.sha256) == (len(data), d["sha1"], d["md5"], d["sha256"])
    assert info.content_md5 == content_md5(data)
    assert client.stat(info.blob_id) == info
    assert b"".join(client.read(info.blob_id)) == data
    assert list(server[1].storage.list_uploads()) == []  # written straight into place: no upload
    # The same bytes through an upload give the same digests (and a blob of their own).
    streamed = client.upload(pieces(data), expected_size=len(data), **d)
    assert (streamed.sha1, streamed.md5, streamed.sha256, streamed.size) == (
        info.sha1,
        info.md5,
        info.sha256,
        info.size,
    )
    assert streamed.blob_id != info.blob_id
    assert _uploads_left(server[1]) == []


@pytest.mark.parametrize(
    ("spec", "size", "reason"),
    [
        (UploadSpec(sha256="0" * 64), 100, "DigestMismatch"),
        (UploadSpec(sha1="0" * 40), 100, "DigestMismatch"),
        (UploadSpec(expected_size=99), 100, "SizeMismatch"),
        (UploadSpec(max_size=50), 100, "SizeExceeded"),
        (UploadSpec(sha1="not hex"), 100, "InvalidRequest"),
        (UploadSpec(), PUT_BLOB_MAX_BYTES + 1, "InvalidRequest"),
    ],
    ids=["sha256", "sha1", "expected-size", "max-size", "bad-digest", "too-large"],
)
def test_put_blob_refusals_leave_nothing(
    client: BlobClient, server: tuple[int, BlobService], spec: UploadSpec, size: int, reason: str
) -> None:
    with pytest.raises(BlobError) as e:
        client.put(spec, payload(size, seed=22))
    assert e.value.reason == reason, e.value
    assert _uploads_left(server[1]) == []


def test_put_blobs_read_in_ranges_and_delete_beside_uploaded_ones(
    client: BlobClient, server: tuple[int, BlobService], settings: BlobSettings
) -> None:
    """Small blobs (PutBlob) of any size up to the limit, with newlines and JSON-like bytes where
    a one-file blob's header ends, read whole and in ranges, stat and deleted, beside a blob
    committed from an upload; on the local backend no file is left of them afterwards."""
    sizes = (0, 1, 100, 4095, 4096, 4097, PUT_BLOB_MAX_BYTES)
    blobs = {}
    for i, size in enumerate(sizes):
        data = (b'\n{"blob_id": "x"}\n' + payload(size, seed=40 + i))[:size]
        blobs[client.put(UploadSpec(expected_size=size), data).blob_id] = data
    streamed = payload(2 * MIB + 7, seed=49)
    blobs[client.upload(pieces(streamed), expected_size=len(streamed)).blob_id] = streamed
    for blob_id, data in blobs.items():
        info = client.stat(blob_id)
        assert (info.size, info.sha1) == (len(data), digests(data)["sha1"])
        assert b"".join(client.read(blob_id)) == data
        half = len(data) // 2
        for offset, length in ((0, 1), (1, 0), (half, min(3, len(data) - half)), (len(data) - 1, 1)):
            if 0 <= offset < len(data):
                want = data[offset : offset + length] if length else data[offset:]
                assert b"".join(client.read(blob_id, offset, length)) == want
        with pytest.raises(BlobError) as e:
            list(client.read(blob_id, len(data), 1))
        assert (e.value.reason, e.value.metadata["size"]) == ("InvalidRange", str(len(data)))
    for blob_id in blobs:
        assert client.delete(blob_id) is True
        assert client.delete(blob_id) is False
        with pytest.raises(BlobError) as e:
            client.stat(blob_id)
        assert e.value.reason == "BlobNotFound"
    if settings.backend == "local":
        root = settings.data_dir
        left = [p for d in ("blobs", "trash") for p in (root / d).rglob("*") if not p.is_dir()]
        assert left == []
        # (a committed upload keeps its record until it expires; a put leaves no staged file)
        assert [p for p in (root / "uploads").iterdir() if not p.is_dir()] == []
