"""Coverage-guided fuzzing of the hand-written protobuf decoder (blob_client/wire.py), bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from imgapi.v1 import blob_pb2

from blob_client.wire import WireError, WriteChunk, decode_write_chunk
from tests.security.fuzzing import bounded_run, load_targets

targets = load_targets()


def test_bounded_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    r = bounded_run("wire", 30000, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done 30000 runs" in r.stderr
    assert not list((tmp_path / "artifacts").iterdir())


def test_bounded_run_from_a_large_parent_is_not_out_of_memory(tmp_path: Path) -> None:
    """libFuzzer's RSS limit reads a peak that Linux carries over from the parent at fork: a test
    runner that had grown past 2 GiB made the first input "out of memory". The limit counts from
    the inherited peak."""
    hog = bytearray(2200 * 1024 * 1024)
    hog[::4096] = b"\x01" * len(range(0, len(hog), 4096))  # touch every page: resident
    try:
        r = bounded_run("wire", 30000, tmp_path)  # > 1 s: libFuzzer checks RSS once a second
    finally:
        del hog
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done 30000 runs" in r.stderr and "out-of-memory" not in r.stderr


# Findings of the fuzzer, with their reproducers: protobuf refuses these, the decoder accepted them.
@pytest.mark.parametrize(
    "raw",
    [
        b"\x80\x80\x80\x80\x10\x00",  # field number 2**29 (above protobuf's maximum)
        b"\x88\x80\x80\x80\x80\x00\x00",  # a key varint longer than 5 bytes
        b"\x0a\x02\xc3\x03" + b"\x0a\x03u-1",  # an earlier upload_id that is not UTF-8, overwritten
    ],
)
def test_decoder_refuses_what_protobuf_refuses(raw: bytes) -> None:
    with pytest.raises(Exception):  # noqa: B017 - protobuf's own DecodeError
        blob_pb2.WriteChunkRequest().ParseFromString(raw)
    with pytest.raises(WireError):
        decode_write_chunk(raw)


def test_the_target_accepts_agreement_and_documented_refusals() -> None:
    targets.wire_one(blob_pb2.WriteChunkRequest(upload_id="u", offset=-5, data=b"d").SerializeToString())
    targets.wire_one(b"\x0a\x05")  # truncated: both refuse
    targets.wire_one(b"\x2b\x2c")  # an empty group: protobuf skips it, ours documents refusing


def test_the_target_fails_on_a_disagreement(monkeypatch: pytest.MonkeyPatch) -> None:
    def off_by_one(raw: bytes) -> WriteChunk:
        c = decode_write_chunk(raw)
        return WriteChunk(c.upload_id, None if c.offset is None else c.offset + 1, c.data, c.crc32)

    monkeypatch.setattr(targets, "decode_write_chunk", off_by_one)
    with pytest.raises(AssertionError):
        targets.wire_one(blob_pb2.WriteChunkRequest(offset=7).SerializeToString())


def test_the_target_lets_an_undocumented_exception_through(monkeypatch: pytest.MonkeyPatch) -> None:
    def crashes(raw: bytes) -> WriteChunk:
        raise IndexError("boom")

    monkeypatch.setattr(targets, "decode_write_chunk", crashes)
    with pytest.raises(IndexError):
        targets.wire_one(b"")
