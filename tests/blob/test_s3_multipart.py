"""S3 multipart uploads against moto through the real minio SDK: resuming when the saved digest
state cannot be restored, and multipart uploads that provably end (listed through the S3 API)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from blob_service.adapters.storage import make_storage
from blob_service.adapters.storage.s3 import S3Storage
from blob_service.domain.errors import BlobError
from blob_service.domain.model import UploadState
from blob_service.handlers.operations import BlobService
from blob_service.handlers.writing import Chunk
from blob_service.settings import MIB, BlobSettings
from tests.blob.conftest import PART, Clock, settings_for
from tests.blob.data import digests, payload, pieces
from tests.components import S3Endpoint

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_settings(tmp_path: Path, s3_endpoint: S3Endpoint) -> BlobSettings:
    return settings_for("s3", tmp_path, s3_endpoint)


def _service(settings: BlobSettings, clock: Clock) -> tuple[BlobService, S3Storage]:
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage)
    storage.check()
    return BlobService(storage, settings, clock), storage


def chunks(data: bytes, offset: int = 0) -> list[Chunk]:
    out = []
    for piece in pieces(data, MIB):
        out.append(Chunk(piece, offset))
        offset += len(piece)
    return out


def multipart_uploads(storage: S3Storage) -> list[str]:
    """Keys of the bucket's multipart uploads in progress, as S3 itself lists them."""
    result = storage.client._list_multipart_uploads(storage.bucket, prefix="blobs/")
    return [u.object_name for u in result.uploads]


def objects(storage: S3Storage, prefix: str = "") -> list[str]:
    return sorted(
        o.object_name or ""
        for o in storage.client.list_objects(storage.bucket, prefix=prefix, recursive=True)
    )


def from_another_openssl(storage: S3Storage, upload_id: str) -> None:
    """Rewrite the saved digest state as another OpenSSL build would have tagged it."""
    key = storage.upload_key(upload_id, "state.json")
    raw = storage.get_bytes(key)
    assert raw is not None
    d = json.loads(raw)
    if d["hash_state"] is None:
        return  # lost by an earlier resume already: the commit hashes the assembled blob
    d["hash_state"] = {
        name: "{}:OpenSSL 0.9.8zz-elsewhere:{}".format(name, value.rsplit(":", 1)[1])
        for name, value in d["hash_state"].items()
    }
    storage.put_bytes(key, json.dumps(d).encode())


# --- resume when the digest state cannot be restored --------------------------------------------------


@pytest.mark.parametrize("resumes", [1, 2])
def test_resume_without_a_restorable_digest_state(
    s3_settings: BlobSettings, clock: Clock, resumes: int
) -> None:
    data = payload(2 * PART + 3 * MIB + 17, seed=21)
    first, storage = _service(s3_settings, clock)
    up = first.start_upload(expected_size=len(data))
    cut = PART + MIB + 5  # one whole part uploaded, a tail saved
    assert first.write(up.upload_id, chunks(data[:cut])).offset == cut
    assert storage.load_upload(up.upload_id).hash_state  # type: ignore[union-attr]

    bounds = [cut, cut + PART, len(data)] if resumes == 2 else [cut, len(data)]
    for a, b in itertools.pairwise(bounds):
        from_another_openssl(storage, up.upload_id)
        replica, _ = _service(s3_settings, clock)  # another replica continues the upload
        assert replica.write(up.upload_id, chunks(data[a:b], a)).offset == b

    from_another_openssl(storage, up.upload_id)
    committer, _ = _service(s3_settings, clock)
    meta = committer.commit(up.upload_id, digests(data), len(data))
    assert meta.digests.__dict__ == digests(data)
    _, it = committer.read(meta.blob_id)
    assert b"".join(bytes(p) for p in it) == data
    assert multipart_uploads(storage) == []
    assert objects(storage, f"uploads/{up.upload_id}/") == [f"uploads/{up.upload_id}/state.json"]


def test_lost_digest_state_and_wrong_digest_leaves_nothing(s3_settings: BlobSettings, clock: Clock) -> None:
    data = payload(PART + 2 * MIB, seed=22)
    svc, storage = _service(s3_settings, clock)
    up = svc.start_upload()
    svc.write(up.upload_id, chunks(data))
    from_another_openssl(storage, up.upload_id)
    with pytest.raises(BlobError) as e:
        _service(s3_settings, clock)[0].commit(up.upload_id, {"sha1": "0" * 40})
    assert e.value.reason == "DigestMismatch"
    assert e.value.metadata["actual"] == digests(data)["sha1"]
    assert multipart_uploads(storage) == []
    assert objects(storage) == []  # neither the assembled object nor any staging


# --- multipart uploads provably end -------------------------------------------------------------------


def _staged(svc: BlobService, storage: S3Storage) -> UploadState:
    up = svc.start_upload()
    svc.write(up.upload_id, chunks(payload(PART + 100, seed=23)))
    assert multipart_uploads(storage) == [storage.blob_key(up.blob_id)]
    return up


def test_abort_aborts_the_multipart_upload(s3_settings: BlobSettings, clock: Clock) -> None:
    svc, storage = _service(s3_settings, clock)
    up = _staged(svc, storage)
    svc.abort(up.upload_id)
    assert multipart_uploads(storage) == []
    assert objects(storage) == []


def test_reaping_aborts_the_multipart_upload(s3_settings: BlobSettings, clock: Clock) -> None:
    svc, storage = _service(s3_settings, clock)
    _staged(svc, storage)
    clock.advance(s3_settings.upload_ttl_seconds + 1)
    assert svc.reap_expired() == 1
    assert multipart_uploads(storage) == []
    assert objects(storage) == []


@pytest.mark.parametrize("failure", ["size", "digest"])
def test_failed_commit_aborts_the_multipart_upload(
    s3_settings: BlobSettings, clock: Clock, failure: str
) -> None:
    svc, storage = _service(s3_settings, clock)
    up = _staged(svc, storage)
    with pytest.raises(BlobError) as e:
        if failure == "size":
            svc.commit(up.upload_id, expected_size=1)
        else:
            svc.commit(up.upload_id, {"md5": "0" * 32})
    assert e.value.reason == ("SizeMismatch" if failure == "size" else "DigestMismatch")
    assert multipart_uploads(storage) == []
    assert objects(storage) == []


def test_failed_start_leaves_no_multipart_upload(
    s3_settings: BlobSettings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, storage = _service(s3_settings, clock)

    def fail(state: UploadState) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage, "save_upload", fail)
    with pytest.raises(BlobError) as e:
        svc.start_upload()
    assert e.value.reason == "InsufficientStorage"
    assert multipart_uploads(storage) == []


Crash = Callable[[S3Storage, pytest.MonkeyPatch], None]


def _crash_saving_committed_state(storage: S3Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies after CompleteMultipartUpload and cleanup, before the state says so."""
    real = storage.save_upload

    def save(state: UploadState) -> None:
        if state.committed is not None:
            raise ConnectionError("process killed")
        real(state)

    monkeypatch.setattr(storage, "save_upload", save)


def _crash_writing_meta(storage: S3Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies right after CompleteMultipartUpload, before the blob's meta is written."""
    real = storage.put_bytes

    def put(key: str, body: bytes) -> None:
        if key.endswith(".meta.json"):
            raise ConnectionError("process killed")
        real(key, body)

    monkeypatch.setattr(storage, "put_bytes", put)


@pytest.mark.parametrize(
    ("crash", "late"),
    [
        (_crash_saving_committed_state, False),
        (_crash_writing_meta, False),
        (_crash_saving_committed_state, True),
    ],
    ids=["before-state", "before-meta", "before-state-seen-late"],
)
def test_commit_after_a_crash_finds_the_upload_completed(
    s3_settings: BlobSettings, clock: Clock, crash: Crash, late: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "NoSuchUpload after a crash" branch: the repeated commit completes, nothing is lost.

    ``late``: the blob object is not visible yet when the retry looks (another replica completing
    it concurrently): completing then fails with NoSuchUpload / NoSuchKey, which is success."""
    data = payload(PART + 3 * MIB, seed=24)
    svc, storage = _service(s3_settings, clock)
    up = svc.start_upload()
    svc.write(up.upload_id, chunks(data))
    with pytest.MonkeyPatch.context() as mp:
        crash(storage, mp)
        with pytest.raises(BlobError):
            svc.commit(up.upload_id)
    assert multipart_uploads(storage) == []  # it was completed before the crash

    after, restarted = _service(s3_settings, clock)  # the restarted process
    if late:
        real_exists, looks = restarted.exists, []

        def exists(key: str) -> bool:
            looks.append(key)
            return False if len(looks) == 1 else real_exists(key)

        monkeypatch.setattr(restarted, "exists", exists)
    meta = after.commit(up.upload_id, digests(data), len(data))
    _, it = after.read(meta.blob_id)
    assert b"".join(bytes(p) for p in it) == data
    assert after.commit(up.upload_id).blob_id == meta.blob_id  # repeated: the same blob
    assert multipart_uploads(storage) == []
