"""The backend suite: the blob operations against every storage backend (no gRPC)."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from blob_service.adapters.storage import Storage, make_storage
from blob_service.adapters.storage.s3 import S3Storage
from blob_service.domain.errors import BlobError
from blob_service.handlers.operations import BlobService
from blob_service.handlers.writing import Chunk
from blob_service.settings import MIB, BlobSettings
from tests.blob.conftest import PART, Clock
from tests.blob.data import content_md5, digests, payload, pieces


def chunks(data: bytes, offset: int = 0, size: int = MIB, crc: bool = False) -> list[Chunk]:
    import zlib

    out = []
    for piece in pieces(data, size):
        out.append(Chunk(piece, offset, zlib.crc32(piece) if crc else None))
        offset += len(piece)
    return out


def read_all(service: BlobService, blob_id: str, offset: int = 0, length: int = 0) -> bytes:
    _, it = service.read(blob_id, offset, length)
    return b"".join(bytes(piece) for piece in it)  # a piece is valid until the next is requested


def reason(exc: pytest.ExceptionInfo[BlobError]) -> str:
    return exc.value.reason


def test_upload_commit_read_stat_delete(service: BlobService) -> None:
    data = payload(2 * PART + 12345)
    up = service.start_upload(expected_size=len(data), expected=digests(data))
    state = service.write(up.upload_id, chunks(data, crc=True))
    assert state.offset == len(data)
    meta = service.commit(up.upload_id)
    assert meta.size == len(data)
    assert meta.digests.__dict__ == digests(data)
    assert meta.digests.content_md5 == content_md5(data)
    assert meta.stor == service.storage.name
    assert read_all(service, meta.blob_id) == data
    assert service.stat(meta.blob_id) == meta
    assert service.delete(meta.blob_id) is True
    assert service.delete(meta.blob_id) is False
    with pytest.raises(BlobError) as e:
        service.stat(meta.blob_id)
    assert reason(e) == "BlobNotFound"


def test_local_small_blob_is_one_durable_file(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put blob is one file in place (header line, then the bytes), stored with two fsyncs (the
    file, then its directory after the rename; the first blob of a prefix also syncs ``blobs/``);
    an uploaded blob keeps its directory (local backend)."""
    import os

    from tests.blob.conftest import settings_for

    settings = settings_for("local", tmp_path, None, fsync=True)
    service = BlobService(make_storage(settings), settings, clock)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    data = b"line one\nline two\n" + payload(5000, seed=33)
    first = service.put(data)
    blobs = tmp_path / "data" / "blobs"
    path = blobs / first.blob_id[:2] / first.blob_id
    staged = synced[0]
    assert synced == [staged, str(blobs), str(path.parent)]
    assert Path(staged).parent == tmp_path / "data" / "uploads" and not Path(staged).exists()
    assert path.is_file()
    header, _, body = path.read_bytes().partition(b"\n")
    assert body == data and json.loads(header)["blob_id"] == first.blob_id
    synced.clear()
    second = service.put(data)  # its prefix may exist now or not: one more sync when it is new
    prefix_is_new = second.blob_id[:2] != first.blob_id[:2]
    assert len(synced) == 2 + prefix_is_new
    up = service.start_upload()
    service.write(up.upload_id, chunks(data))
    uploaded = service.commit(up.upload_id)
    assert (blobs / uploaded.blob_id[:2] / uploaded.blob_id / "meta.json").is_file()
    for meta in (first, second, uploaded):
        assert service.stat(meta.blob_id) == meta
        assert read_all(service, meta.blob_id) == data
        assert read_all(service, meta.blob_id, 9, 9) == b"line two\n"


def test_small_and_empty_blobs(service: BlobService) -> None:
    for data in (b"", b"x", payload(1000)):
        up = service.start_upload()
        service.write(up.upload_id, chunks(data) or [Chunk(b"", 0)])
        meta = service.commit(up.upload_id)
        assert (meta.size, meta.digests.__dict__) == (len(data), digests(data))
        assert read_all(service, meta.blob_id) == data


def test_resume_across_streams_and_replicas(
    service: BlobService, storage: Storage, settings: BlobSettings, clock: Clock
) -> None:
    """Each stream continues where the last stopped, also on a fresh service (another replica)."""
    data = payload(3 * PART + 777, seed=1)
    up = service.start_upload(expected_size=len(data))
    cuts = [0, 100, PART - 1, PART + 5, 2 * PART, 3 * PART + 1, len(data)]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        replica = service if i % 2 == 0 else BlobService(make_storage(settings), settings, clock)
        state = replica.write(up.upload_id, chunks(data[a:b], a))
        assert state.offset == b
        assert service.get_upload(up.upload_id).offset == b
    meta = BlobService(make_storage(settings), settings, clock).commit(up.upload_id)
    assert meta.digests.__dict__ == digests(data)
    assert read_all(service, meta.blob_id) == data


def test_stream_failure_keeps_what_was_accepted(service: BlobService) -> None:
    data = payload(3 * MIB + 10, seed=2)

    def broken() -> object:
        yield from chunks(data[: 2 * MIB])
        raise RuntimeError("client went away")

    up = service.start_upload()
    with pytest.raises(RuntimeError):
        service.write(up.upload_id, broken())  # type: ignore[arg-type]
    assert service.get_upload(up.upload_id).offset == 2 * MIB
    service.write(up.upload_id, chunks(data[2 * MIB :], 2 * MIB))
    assert service.commit(up.upload_id).digests.__dict__ == digests(data)


def test_wrong_offset_is_refused_with_current_offset(service: BlobService) -> None:
    up = service.start_upload()
    service.write(up.upload_id, [Chunk(b"a" * 100, 0)])
    with pytest.raises(BlobError) as e:
        service.write(up.upload_id, [Chunk(b"b" * 10, 150)])
    assert reason(e) == "OffsetMismatch"
    assert e.value.metadata["current_offset"] == "100"
    with pytest.raises(BlobError) as e:  # a later chunk must follow the previous one
        service.write(up.upload_id, [Chunk(b"b" * 10, 100), Chunk(b"c", 111)])
    assert (reason(e), e.value.metadata["current_offset"]) == ("OffsetMismatch", "110")
    with pytest.raises(BlobError) as e:
        service.write(up.upload_id, [Chunk(b"x")])
    assert reason(e) == "InvalidRequest"
    assert service.get_upload(up.upload_id).offset == 110


def test_repeated_chunk_is_acknowledged(service: BlobService) -> None:
    data = payload(3 * MIB, seed=3)
    up = service.start_upload()
    service.write(up.upload_id, chunks(data[: 2 * MIB]))
    # the last chunk again (its acknowledgement was lost), then the rest
    state = service.write(up.upload_id, chunks(data[MIB:], MIB))
    assert state.offset == 3 * MIB
    # a straddling chunk: stored prefix compared, the rest appended
    state = service.write(up.upload_id, [Chunk(data[-10:] + b"tail", 3 * MIB - 10)])
    assert state.offset == 3 * MIB + 4
    # the same offset with different bytes is refused
    with pytest.raises(BlobError) as e:
        service.write(up.upload_id, [Chunk(b"tai!", 3 * MIB)])
    assert (reason(e), e.value.metadata["current_offset"]) == ("OffsetMismatch", str(3 * MIB + 4))
    assert service.commit(up.upload_id).digests.__dict__ == digests(data + b"tail")


def test_repeat_of_bytes_in_uploaded_s3_parts(service: BlobService, backend: str) -> None:
    """S3 cannot read uploaded parts back: a repeat there is refused with the resume point."""
    data = payload(PART + MIB, seed=4)
    up = service.start_upload()
    service.write(up.upload_id, chunks(data))
    if backend == "s3":
        with pytest.raises(BlobError) as e:
            service.write(up.upload_id, chunks(data[:MIB]))
        assert (reason(e), e.value.metadata["current_offset"]) == ("OffsetMismatch", str(len(data)))
    else:
        assert service.write(up.upload_id, chunks(data[:MIB])).offset == len(data)
    # bytes after the last part boundary (the tail) can be compared on every backend
    assert service.write(up.upload_id, chunks(data[PART:], PART)).offset == len(data)


def test_bad_crc_never_moves_the_offset(service: BlobService) -> None:
    up = service.start_upload()
    service.write(up.upload_id, [Chunk(b"good", 0, crc32=0x80BE2B7B)] if False else [Chunk(b"good", 0)])
    with pytest.raises(BlobError) as e:
        service.write(up.upload_id, [Chunk(b"more", 4), Chunk(b"bad!", 8, crc32=1234)])
    assert (reason(e), e.value.metadata["current_offset"]) == ("ChunkChecksum", "8")
    assert service.get_upload(up.upload_id).offset == 8
    service.write(up.upload_id, chunks(b"fine", 8, crc=True))
    assert read_all(service, service.commit(up.upload_id).blob_id) == b"goodmorefine"


def test_size_limit_while_writing(service: BlobService) -> None:
    up = service.start_upload(max_size=10)
    service.write(up.upload_id, [Chunk(b"0123456789", 0)])
    with pytest.raises(BlobError) as e:
        service.write(up.upload_id, [Chunk(b"!", 10)])
    assert (reason(e), e.value.metadata["current_offset"]) == ("SizeExceeded", "10")
    with pytest.raises(BlobError) as e:
        service.start_upload(expected_size=service.settings.max_blob_size + 1)
    assert reason(e) == "SizeExceeded"


@pytest.mark.parametrize(
    ("at_start", "at_commit", "why"),
    [
        ({"expected": {"sha1": "0" * 40}}, {}, "DigestMismatch"),
        ({}, {"expected": {"md5": "0" * 32}}, "DigestMismatch"),
        ({}, {"expected": {"sha256": "f" * 64}}, "DigestMismatch"),
        ({"expected_size": 5}, {}, "SizeMismatch"),
        ({}, {"expected_size": 99}, "SizeMismatch"),
    ],
)
def test_failed_commit_leaves_nothing(
    service: BlobService,
    storage: Storage,
    at_start: dict[str, object],
    at_commit: dict[str, object],
    why: str,
) -> None:
    data = payload(PART + 100, seed=5)
    up = service.start_upload(**at_start)  # type: ignore[arg-type]
    service.write(up.upload_id, chunks(data))
    with pytest.raises(BlobError) as e:
        service.commit(up.upload_id, **at_commit)  # type: ignore[arg-type]
    assert reason(e) == why
    if why == "DigestMismatch":
        assert e.value.metadata["actual"] == digests(data)[e.value.metadata["digest"]]
    assert storage.stat_blob(up.blob_id) is None
    assert list(storage.list_uploads()) == []
    with pytest.raises(BlobError) as e:
        service.get_upload(up.upload_id)
    assert reason(e) == "UploadNotFound"


def test_right_digests_in_any_case_and_repeated_commit(service: BlobService) -> None:
    data = payload(1000, seed=6)
    up = service.start_upload(expected={"sha1": digests(data)["sha1"].upper()})
    service.write(up.upload_id, chunks(data))
    meta = service.commit(up.upload_id, {"md5": digests(data)["md5"]}, len(data))
    assert service.commit(up.upload_id) == meta  # the answer to a retried commit
    with pytest.raises(BlobError) as e:
        service.write(up.upload_id, [Chunk(b"late", len(data))])
    assert reason(e) == "UploadNotFound"
    with pytest.raises(BlobError) as e:
        service.start_upload(expected={"sha1": "not-hex"})
    assert reason(e) == "InvalidRequest"


def test_abort(service: BlobService, storage: Storage) -> None:
    up = service.start_upload()
    service.write(up.upload_id, chunks(payload(PART + 1)))
    service.abort(up.upload_id)
    assert list(storage.list_uploads()) == []
    with pytest.raises(BlobError) as e:
        service.abort(up.upload_id)
    assert reason(e) == "UploadNotFound"


def test_expired_upload_is_reaped(service: BlobService, storage: Storage, clock: Clock) -> None:
    keep = service.start_upload(ttl_seconds=3600)
    gone = service.start_upload(ttl_seconds=60)
    service.write(gone.upload_id, chunks(payload(PART + 1)))
    clock.advance(61)
    with pytest.raises(BlobError) as e:
        service.write(gone.upload_id, [Chunk(b"x", PART + 1)])
    assert reason(e) == "UploadNotFound"
    assert service.reap_expired() == 1
    assert list(storage.list_uploads()) == [keep.upload_id]
    assert storage.load_upload(gone.upload_id) is None
    # writing pushes the expiry forward
    clock.advance(3500)
    service.write(keep.upload_id, [Chunk(b"x", 0)])
    clock.advance(3500)
    assert service.reap_expired() == 0
    assert service.get_upload(keep.upload_id).offset == 1


def test_staging_without_state_is_reaped_once_stale(
    service: BlobService, storage: Storage, settings: BlobSettings, clock: Clock
) -> None:
    """Staging whose state was never saved (a crash, or a full disk at StartUpload) is reaped."""
    orphan, put_orphan = uuid.uuid4().hex, uuid.uuid4().hex
    if settings.backend == "local":
        d = settings.data_dir / "uploads" / orphan
        d.mkdir(parents=True)
        (d / "data").write_bytes(b"half")
        # a small blob's staged file, left by a crash before its rename into place
        (settings.data_dir / "uploads" / put_orphan).write_bytes(b'{"blob_id": "0"}\nha')
        orphans = {orphan, put_orphan}
    else:
        assert isinstance(storage, S3Storage)
        storage.put_bytes(storage.upload_key(orphan, "tail-0"), b"half")
        orphans = {orphan}
    live = service.start_upload(ttl_seconds=3 * settings.upload_ttl_seconds)
    assert service.reap_expired() == 0  # fresh: it may be an upload being created right now
    assert orphans <= set(storage.list_uploads())
    assert service.get_upload(live.upload_id).offset == 0
    clock.advance(settings.upload_ttl_seconds + 5)
    assert service.reap_expired() == len(orphans)
    assert set(storage.list_uploads()) == {live.upload_id}
    if settings.backend == "local":
        assert sorted(p.name for p in (settings.data_dir / "uploads").iterdir()) == [live.upload_id]


def test_concurrent_writers_do_not_corrupt(service: BlobService) -> None:
    """Several streams race to write the same upload: the result is exactly the data, or refused."""
    data = payload(4 * MIB, seed=7)
    up = service.start_upload()
    errors: list[str] = []

    def writer(start_chunk: int) -> None:
        for _ in range(20):
            at = service.get_upload(up.upload_id).offset
            if at >= len(data):
                return
            try:
                service.write(up.upload_id, chunks(data[at:], at, size=256 * 1024))
            except BlobError as e:
                errors.append(e.reason)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(errors) <= {"OffsetMismatch", "UploadBusy"}
    meta = service.commit(up.upload_id, expected_size=len(data))
    assert meta.digests.__dict__ == digests(data)
    assert read_all(service, meta.blob_id) == data


@pytest.mark.parametrize(
    "crafted",
    ["../../etc/passwd", "/etc/passwd", "a" * 31 + "\x00", "ä" * 32, "A" * 32, "", "..", "0" * 33],
)
def test_crafted_ids_are_refused(service: BlobService, crafted: str, tmp_path: Path) -> None:
    for call in (
        lambda: service.get_upload(crafted),
        lambda: service.write(crafted, [Chunk(b"x", 0)]),
        lambda: service.commit(crafted),
        lambda: service.abort(crafted),
        lambda: service.stat(crafted),
        lambda: service.read(crafted),
        lambda: service.delete(crafted),
    ):
        with pytest.raises(BlobError) as e:
            call()
        assert reason(e) == "InvalidId"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == []


def test_ranged_reads(service: BlobService) -> None:
    data = payload(PART + 3 * MIB + 5, seed=8)
    up = service.start_upload()
    service.write(up.upload_id, chunks(data))
    blob = service.commit(up.upload_id).blob_id
    for offset, length in ((0, 0), (0, 1), (7, 0), (PART - 3, 10), (MIB + 1, 2 * MIB), (len(data), 0)):
        want = data[offset : offset + length] if length else data[offset:]
        assert read_all(service, blob, offset, length) == want
    for offset, length in ((len(data) + 1, 0), (len(data) - 1, 2), (-1, 0), (0, -5)):
        with pytest.raises(BlobError) as e:
            service.read(blob, offset, length)
        assert (reason(e), e.value.metadata["size"]) == ("InvalidRange", str(len(data)))


def test_local_resume_rebuilds_digests_by_rereading(tmp_path: Path, clock: Clock) -> None:
    """Without a saved digest state a resume re-reads the stored bytes (local backend)."""
    from tests.blob.conftest import settings_for

    settings = settings_for("local", tmp_path, None, persist_digest_state=False)
    data = payload(5 * MIB + 3, seed=9)
    up = BlobService(make_storage(settings), settings, clock).start_upload()
    assert up.hash_state is None
    for a in range(0, len(data), 2 * MIB):
        svc = BlobService(make_storage(settings), settings, clock)  # a fresh process each time
        svc.write(up.upload_id, chunks(data[a : a + 2 * MIB], a))
    meta = BlobService(make_storage(settings), settings, clock).commit(up.upload_id)
    assert meta.digests.__dict__ == digests(data)


@pytest.mark.parametrize(
    ("call", "failing_call"),
    [("pwrite", 1), ("fsync", 1), ("fsync", 2), ("fsync", 3)],
    ids=["write", "file-fsync", "new-prefix-fsync", "dir-fsync"],
)
def test_local_put_failing_midway_leaves_nothing(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, call: str, failing_call: int
) -> None:
    """A small blob whose storage fails at its write or any of its syncs (a full disk; the first
    blob of a prefix also syncs the new prefix directory) is InsufficientStorage and leaves
    neither a staged file, a blob nor an open file; the next put works (local backend)."""
    import errno
    import os

    from tests.blob.conftest import settings_for

    settings = settings_for("local", tmp_path, None, fsync=True)
    service = BlobService(make_storage(settings), settings, clock)
    calls = {"n": 0}
    real = getattr(os, call)

    def failing(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == failing_call:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args)

    open_files = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, call, failing)
    with pytest.raises(BlobError) as e:
        service.put(payload(3000, seed=31))
    monkeypatch.setattr(os, call, real)
    assert reason(e) == "InsufficientStorage"
    assert calls["n"] == failing_call
    assert len(os.listdir("/proc/self/fd")) == open_files
    assert list(service.storage.list_uploads()) == []
    assert [p for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file()] == []
    data = payload(3000, seed=32)
    meta = service.put(data)
    assert read_all(service, meta.blob_id) == data
    assert service.stat(meta.blob_id) == meta
