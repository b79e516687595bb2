"""The local backend's O_DIRECT path: appends from an aligned buffer, read-ahead reads, fallbacks.

Over gRPC wherever the behaviour is visible there; the appender's own edge cases (tails written
through the page cache and then covered by a direct write) are checked against the file's bytes.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from imgapi.v1 import blob_pb2, blob_pb2_grpc

from blob_client import BlobClient
from blob_client.wire import encode_write_chunk
from blob_service.adapters.storage.direct import (
    ALIGN,
    DIRECT_READ_MIN,
    DirectAppender,
    open_direct,
    read_direct,
)
from blob_service.adapters.storage.files import pwrite_all
from blob_service.adapters.storage.local import LocalStorage
from blob_service.api.server import create_server
from blob_service.handlers.operations import BlobService
from blob_service.handlers.writing import Chunk
from blob_service.settings import MIB, BlobSettings
from tests.blob.conftest import channel_to, settings_for
from tests.blob.data import digests, payload


def _direct_supported(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / "probe"
    probe.touch()
    fd = open_direct(probe)
    if fd is None:
        return False
    os.close(fd)
    return True


@pytest.fixture
def direct_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    if not _direct_supported(d):
        pytest.fail(f"{d} refuses O_DIRECT: these tests need a disk-backed temp dir")
    return d


@pytest.fixture
def local_server(tmp_path: Path, direct_dir: Path) -> Iterator[tuple[BlobClient, BlobService, grpc.Channel]]:
    # checkpoint_bytes 6 MiB: a mark every 3 MiB, inside the 4 MiB buffer, so tails are written
    # through the page cache and later covered by direct writes.
    settings = settings_for("local", tmp_path, None, data_dir=direct_dir, checkpoint_bytes=6 * MIB)
    srv, port, _health, svc = create_server(settings)
    srv.start()
    try:
        with channel_to(port) as ch:
            yield BlobClient(ch, retry_delay=0.05), svc, ch
    finally:
        srv.stop(0).wait()
        svc.stop()


def test_odd_chunks_resumes_and_repeats_end_byte_exact(
    local_server: tuple[BlobClient, BlobService, grpc.Channel],
) -> None:
    client, svc, ch = local_server
    data = payload(13 * MIB + 333, seed=21)
    up = client.start_upload(expected_size=len(data))
    stub = blob_pb2_grpc.BlobServiceStub(ch)
    write_raw = ch.stream_unary(
        "/imgapi.v1.BlobService/WriteChunks",
        request_serializer=None,
        response_deserializer=blob_pb2.UploadStatus.FromString,
    )
    # Streams ending at unaligned offsets (a resume re-reads the partial block), chunks of odd
    # sizes, and each stream re-sending the last 5000 bytes of the previous one (an idempotent
    # repeat that straddles the buffer and the file).
    cuts = [0, 1, 4095, ALIGN + 1, 3 * MIB + 7, 4 * MIB, 9 * MIB - 1, 12 * MIB + 100, len(data)]
    for a, b in itertools.pairwise(cuts):
        start = max(0, a - 5000)
        pieces = [data[i : min(i + 777_777, b)] for i in range(start, b, 777_777)]
        msgs = (
            encode_write_chunk(p, upload_id=up.upload_id if i == 0 else "", offset=start + i * 777_777)
            for i, p in enumerate(pieces)
        )
        status = write_raw(msgs)
        assert status.committed_offset == b
    want = digests(data)
    info = client.commit(up.upload_id, sha1=want["sha1"], md5=want["md5"], sha256=want["sha256"])
    assert (info.size, info.sha1, info.md5, info.sha256) == (len(data), *digests(data).values())
    assert b"".join(client.read(info.blob_id)) == data
    # Ranges long enough for direct reads, at unaligned offsets, across read-ahead blocks.
    for offset, length in ((1, DIRECT_READ_MIN), (4 * MIB - 1, 9 * MIB + 2), (5000, len(data) - 5000)):
        assert b"".join(client.read(info.blob_id, offset, length)) == data[offset : offset + length]
    stored = svc.storage.stat_blob(info.blob_id)
    assert stored is not None and stored.size == len(data)
    assert stub.StatBlob(blob_pb2.StatBlobRequest(blob_id=info.blob_id)).size == len(data)


def _upload_and_check(d: Path, tmp_path: Path, seed: int) -> bool:
    """Upload through the service on a LocalStorage in ``d``; whether its writer wrote directly."""
    settings = settings_for("local", tmp_path, None, data_dir=d)
    storage = LocalStorage(d, settings.checkpoint_bytes, durable=False, direct_io=True)
    svc = BlobService(storage, settings)
    data = payload(DIRECT_READ_MIN + 12345, seed=seed)
    up = svc.start_upload()
    state = storage.load_upload(up.upload_id)
    assert state is not None
    writer = storage.open_writer(state)
    direct = writer._direct is not None and writer._direct.direct
    writer.close()
    svc.write(up.upload_id, [Chunk(data[i : i + MIB], i) for i in range(0, len(data), MIB)])
    meta = svc.commit(up.upload_id)
    _, pieces = svc.read(meta.blob_id, 3, len(data) - 3)
    assert b"".join(bytes(p) for p in pieces) == data[3:]
    assert meta.digests.__dict__ == digests(data)
    return direct


def test_writer_uses_o_direct_where_the_filesystem_allows_it(tmp_path: Path, direct_dir: Path) -> None:
    assert _upload_and_check(direct_dir, tmp_path, seed=22)


def test_writer_falls_back_when_the_filesystem_refuses_o_direct(
    tmp_path: Path, direct_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on filesystems without O_DIRECT (older tmpfs, some network filesystems): open refuses."""
    real_open = os.open

    def refusing_open(path: object, flags: int, *args: object) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "O_DIRECT not supported")
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)  # refuses O_DIRECT only
    assert not _upload_and_check(direct_dir, tmp_path, seed=28)


def test_appender_falls_back_when_the_first_direct_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some filesystems accept the flag at open and refuse the write (alignment rules)."""
    path = tmp_path / "f"
    path.touch()
    fd = os.open(path, os.O_RDWR)
    dfd = open_direct(path)
    assert dfd is not None
    real = pwrite_all

    def refusing(target: int, data: object, offset: int) -> None:
        if target == dfd:
            raise OSError(errno.EINVAL, "refused")
        real(target, data, offset)  # type: ignore[arg-type]

    monkeypatch.setattr("blob_service.adapters.storage.direct.pwrite_all", refusing)
    data = payload(200_000, seed=29)
    app = DirectAppender(fd, dfd, 0, buffer_bytes=64 * 1024)
    app.write(data[:100_000])
    assert not app.direct
    app.write(data[100_000:])
    app.flush_tail()
    app.close()
    os.close(fd)
    assert path.read_bytes() == data


def test_appender_tail_flushes_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.touch()
    if not _direct_supported(tmp_path / "probe-dir"):
        pytest.fail("the temp dir refuses O_DIRECT")
    data = payload(3 * 64 * 1024 + 999, seed=23)
    fd = os.open(path, os.O_RDWR)
    dfd = open_direct(path)
    assert dfd is not None
    app = DirectAppender(fd, dfd, 0, buffer_bytes=64 * 1024)
    pos = 0
    for i, n in enumerate([1, 4095, 70_000, 3, 60_000, 65_536, len(data)]):
        piece = data[pos : pos + n]
        app.write(piece)
        pos += len(piece)
        if i % 2:
            app.flush_tail()  # a checkpoint: the tail goes through the page cache
        assert app.offset == pos
        for a, b in ((0, pos), (max(0, pos - 70_000), pos), (pos // 2, pos // 2 + 1)):
            assert app.read(a, b - a) == data[a:b]
        if pos == len(data):
            break
    app.flush_tail()
    app.close()
    os.close(fd)
    assert path.read_bytes() == data

    # Resuming at an unaligned offset re-reads the partial block, then continues.
    more = payload(100_000, seed=24)
    fd = os.open(path, os.O_RDWR)
    dfd = open_direct(path)
    assert dfd is not None
    app = DirectAppender(fd, dfd, len(data), buffer_bytes=64 * 1024)
    app.write(more)
    app.flush_tail()
    app.close()
    os.close(fd)
    assert path.read_bytes() == data + more


def test_read_ahead_threads_stop_when_the_reader_stops(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(payload(20 * MIB, seed=25))
    dfd = open_direct(path, os.O_RDONLY)
    assert dfd is not None
    it = read_direct(dfd, 100, 20 * MIB - 100, MIB)
    first = bytes(next(it))
    assert first == path.read_bytes()[100 : 100 + MIB]
    assert any(t.name == "blob-read-ahead" for t in threading.enumerate())
    it.close()  # what the servicer's generator does when the client goes away
    assert not [t for t in threading.enumerate() if t.name == "blob-read-ahead" and t.is_alive()]
    os.close(dfd)


def test_short_file_is_an_error_not_a_short_read(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(payload(10 * MIB, seed=26))
    dfd = open_direct(path, os.O_RDONLY)
    assert dfd is not None
    with pytest.raises(OSError, match="file ends at"):
        for _ in read_direct(dfd, 0, 12 * MIB, MIB):
            pass
    os.close(dfd)


def test_settings_can_turn_direct_io_off(tmp_path: Path, direct_dir: Path) -> None:
    settings = BlobSettings(data_dir=direct_dir, direct_io=False, fsync=False, bind="127.0.0.1:0")
    srv, port, _h, svc = create_server(settings)
    srv.start()
    try:
        with channel_to(port) as ch:
            client = BlobClient(ch)
            data = payload(2 * MIB, seed=27)
            info = client.upload(iter([data]))
            assert b"".join(client.read(info.blob_id)) == data
            up = client.start_upload()
            state = svc.storage.load_upload(up.upload_id)
            assert state is not None
            writer = svc.storage.open_writer(state)
            assert getattr(writer, "_direct", "absent") is None
            writer.close()
    finally:
        srv.stop(0).wait()
        svc.stop()


def test_only_a_few_reads_at_a_time_go_direct(tmp_path: Path, direct_dir: Path) -> None:
    """Many clients pulling one image: one direct read (IMGAPI_BLOB_DIRECT_READS=1), the others
    through the page cache; every one of them byte-exact."""
    settings = settings_for("local", tmp_path, None, data_dir=direct_dir, direct_reads=1)
    srv, port, _h, svc = create_server(settings)
    srv.start()
    try:
        with channel_to(port) as ch:
            client = BlobClient(ch)
            data = payload(5 * DIRECT_READ_MIN + 5, seed=30)  # more than the read-ahead holds
            info = client.upload(iter([data]))
            readers = [client.read(info.blob_id) for _ in range(4)]
            firsts = [bytes(next(r)) for r in readers]  # all four streams open at once
            # this service's read-ahead threads only (other servers of the session read too)
            name = getattr(svc.storage, "read_ahead_name", None)
            assert name is not None
            threads = [t for t in threading.enumerate() if t.name == name and t.is_alive()]
            assert len(threads) == 2  # one direct read: its two read-ahead threads
            for first, r in zip(firsts, readers, strict=True):
                assert first + b"".join(r) == data
    finally:
        srv.stop(0).wait()
        svc.stop()
