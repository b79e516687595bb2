"""Small pieces: resumable digest state, settings validation, client helpers, ids."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from blob_client.chunks import Retained, rechunk
from blob_service.domain.digests import DigestSet
from blob_service.domain.errors import BlobError
from blob_service.domain.ids import checked_id, new_id
from blob_service.domain.model import UploadState
from blob_service.settings import BlobSettings, load_settings
from tests.blob.conftest import needs_libcrypto


@needs_libcrypto
@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(min_value=0, max_value=8))
def test_saved_digest_state_continues_exactly(parts: list[bytes], cut: int) -> None:
    ds = DigestSet.new()
    for p in parts[:cut]:
        ds.update(p)
    restored = DigestSet.restore(ds.export())
    assert restored is not None
    for p in parts[cut:]:
        restored.update(p)
    whole = b"".join(parts)
    got = restored.digests()
    assert (got.sha1, got.md5, got.sha256) == (
        hashlib.sha1(whole).hexdigest(),
        hashlib.md5(whole).hexdigest(),
        hashlib.sha256(whole).hexdigest(),
    )
    # digests() does not finalize the running state
    assert restored.digests() == got


def test_foreign_or_corrupt_digest_state_is_not_restored() -> None:
    saved = DigestSet.new().export()
    assert saved is not None
    assert DigestSet.restore(None) is None
    assert DigestSet.restore({**saved, "sha1": "sha1:OpenSSL 0.9:AAAA"}) is None
    assert DigestSet.restore({**saved, "md5": saved["md5"][:-8]}) is None
    assert DigestSet.restore({k: v for k, v in saved.items() if k != "sha256"}) is None


def test_state_json_roundtrip() -> None:
    st_ = UploadState(new_id(), new_id(), 5, 0, 10, {"sha1": "a" * 40}, 60, "", "lbl").touched()
    assert UploadState.from_json(st_.to_json()) == st_


def test_ids() -> None:
    i = new_id()
    assert checked_id(i) == i
    for bad in ("../x", i.upper(), i + "0", i[:-1] + "\n", ""):
        with pytest.raises(BlobError):
            checked_id(bad)


def test_settings_validation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert BlobSettings().bind == "127.0.0.1:8502"
    assert BlobSettings().max_blob_size == 21474836480
    with pytest.raises(ValueError, match="IMGAPI_BLOB_S3_ENDPOINT"):
        BlobSettings(backend="s3")
    s3 = BlobSettings(backend="s3", s3_endpoint="h:1", s3_access_key="a", s3_secret_key=SecretStr("b"))
    assert s3.s3_part_size * 10_000 >= s3.max_blob_size
    with pytest.raises(ValueError, match="cannot hold"):
        BlobSettings(
            backend="s3",
            s3_endpoint="h:1",
            s3_access_key="a",
            s3_secret_key=SecretStr("b"),
            s3_part_size=5 * 2**20,
            max_blob_size=60 * 2**30,
        )
    monkeypatch.setenv("IMGAPI_BLOB_BACKEND", "tape")
    monkeypatch.setenv("IMGAPI_BLOB_CHECKPOINT_BYTES", "12")
    with pytest.raises(SystemExit) as e:
        load_settings()
    assert e.value.code == 2
    line = json.loads(capsys.readouterr().err)  # not a terminal: one JSON log line
    assert line["level"] == "error" and line["service"] == "blob"
    assert "IMGAPI_BLOB_BACKEND" in line["msg"] and "IMGAPI_BLOB_CHECKPOINT_BYTES" in line["msg"]


def test_rechunk_and_retention() -> None:
    assert [len(c) for c in rechunk([b"a" * 10, b"", b"b" * 3], 4)] == [4, 4, 2, 3]
    r = Retained(window=10)
    for off in range(0, 30, 4):
        r.add(off, bytes([off]) * 4)
    assert r.start == 20  # the oldest dropped once the newer ones cover the window
    assert b"".join(r.since(22)) == bytes([20]) * 2 + bytes([24]) * 4 + bytes([28]) * 4
