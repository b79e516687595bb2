"""The hashing pipeline and the background checkpoints of the local backend."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from blob_service.adapters.storage.base import StagedConflict, SyncsInBackground
from blob_service.adapters.storage.local import LocalStorage
from blob_service.domain.digest_pipeline import GROUPS, DigestPipeline
from blob_service.domain.digests import ALGORITHMS, DigestSet
from blob_service.domain.ids import new_id
from blob_service.domain.model import UploadState
from blob_service.handlers.writing import Chunk, UploadStream
from tests.blob.conftest import needs_libcrypto

MIB = 1024 * 1024
needs_export = needs_libcrypto


def _hex(data: bytes) -> tuple[str, str, str]:
    return (hashlib.sha1(data).hexdigest(), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


def test_groups_cover_every_digest_once() -> None:
    assert sorted(n for g in GROUPS for n in g) == sorted(ALGORITHMS)


@needs_export
def test_snapshots_mid_stream_are_exact() -> None:
    blocks = [os.urandom(MIB + i) for i in range(6)]
    pipe = DigestPipeline(DigestSet.new())
    snaps = []
    try:
        for b in blocks:
            pipe.feed(b)
            snaps.append(pipe.snapshot())  # taken without draining: the workers fill it in
        final = pipe.digests_now()
    finally:
        pipe.close()
    assert (final.sha1, final.md5, final.sha256) == _hex(b"".join(blocks))
    for i, snap in enumerate(snaps):
        restored = DigestSet.restore(snap.result())
        assert restored is not None
        d = restored.digests()
        assert (d.sha1, d.md5, d.sha256) == _hex(b"".join(blocks[: i + 1]))


def test_snapshot_before_threads_start_and_without_export() -> None:
    pipe = DigestPipeline(DigestSet.new(allow_export=False))
    pipe.feed(b"small")  # hashed inline
    assert pipe.snapshot().result() is None  # hashlib state cannot be saved
    pipe.feed(os.urandom(MIB))  # starts the workers
    assert pipe.snapshot().result() is None
    pipe.close()


def test_a_failing_hasher_fails_the_snapshot() -> None:
    ds = DigestSet.new()

    class Boom:
        def update(self, data: bytes | bytearray | memoryview) -> None:
            raise OSError("hasher broke")

        def hexdigest(self) -> str:
            return ""

        def export(self) -> str | None:
            return None

    ds.hashers["md5"] = Boom()
    pipe = DigestPipeline(ds)
    pipe.feed(os.urandom(MIB))
    with pytest.raises(OSError, match="hasher broke"):
        pipe.snapshot().result()
    pipe.close()


def _upload(storage: LocalStorage) -> UploadState:
    state = UploadState(
        new_id(), new_id(), 0, 0, 64 * MIB, {}, 3600, "", "t", hash_state=DigestSet.new().export()
    ).touched()
    return storage.create_upload(state)


def _clock() -> datetime:
    return datetime.now(UTC)


@needs_export
def test_background_checkpoints_save_exact_offsets_and_digests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path, checkpoint_bytes=2 * MIB, durable=True)
    state = _upload(storage)
    saved: list[UploadState] = []
    real_save = storage.save_upload

    def spy(st: UploadState) -> None:
        real_save(st)
        saved.append(st)

    monkeypatch.setattr(storage, "save_upload", spy)
    data = os.urandom(9 * MIB + 123)
    stream = UploadStream(storage, state, True, _clock)
    assert isinstance(stream.writer, SyncsInBackground)
    chunks = (Chunk(data[i : i + MIB], i) for i in range(0, len(data), MIB))
    final = stream.apply(chunks)
    assert final.offset == len(data)
    offsets = [s.offset for s in saved]
    assert offsets == sorted(offsets) and offsets[-1] == len(data)
    assert len(offsets) >= 5  # a checkpoint every half checkpoint_bytes, in the background
    for s in saved:  # every saved state holds the digests of exactly its bytes
        ds = DigestSet.restore(s.hash_state)
        assert ds is not None
        d = ds.digests()
        assert (d.sha1, d.md5, d.sha256) == _hex(data[: s.offset])
    reloaded = storage.load_upload(state.upload_id)
    assert reloaded is not None and reloaded.offset == len(data)


@needs_export
def test_a_failed_background_checkpoint_fails_the_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path, checkpoint_bytes=2 * MIB, durable=False)
    state = _upload(storage)
    calls: list[int] = []
    real_save = storage.save_upload

    def failing(st: UploadState, *a: Any) -> None:
        calls.append(st.offset)
        if len(calls) == 1:
            raise StagedConflict("removed under us")
        real_save(st)

    monkeypatch.setattr(storage, "save_upload", failing)
    data = os.urandom(4 * MIB)
    stream = UploadStream(storage, state, True, _clock)
    with pytest.raises(StagedConflict):
        stream.apply(Chunk(data[i : i + MIB], i) for i in range(0, len(data), MIB))
    # the stream stopped at the failure; what it wrote is still checkpointed, consistently
    reloaded = storage.load_upload(state.upload_id)
    assert reloaded is not None and 0 < reloaded.offset < len(data)
    ds = DigestSet.restore(reloaded.hash_state)
    assert ds is not None and ds.digests().sha1 == hashlib.sha1(data[: reloaded.offset]).hexdigest()
