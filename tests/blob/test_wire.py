"""Hand-encoded WriteChunks requests, and the re-chunking into them."""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import AsyncIterator

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st
from imgapi.v1 import blob_pb2

from blob_client.chunks import arechunk
from blob_client.wire import WireError, crc32, decode_write_chunk, encode_read_data, encode_write_chunk


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300, 1 << 20])
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"upload_id": "ab" * 16, "offset": 0},
        {"offset": 2**40 + 5, "crc32": 0xDEADBEEF},
        {"upload_id": "x", "offset": 300, "crc32": 0},
    ],
)
def test_encoded_request_parses_as_the_message(size: int, fields: dict[str, object]) -> None:
    data = os.urandom(size)
    for buf in (data, bytearray(data), memoryview(data)):
        wire = encode_write_chunk(buf, **fields)  # type: ignore[arg-type]
        msg = blob_pb2.WriteChunkRequest.FromString(wire)
        assert msg == blob_pb2.WriteChunkRequest(data=data, **fields)  # type: ignore[arg-type]
        assert msg.HasField("offset") == ("offset" in fields)
        assert msg.HasField("crc32") == ("crc32" in fields)


def test_negative_offset_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_write_chunk(b"x", offset=-1)


@pytest.mark.parametrize("sizes", [[], [10], [4, 4], [3, 0, 9, 1], [64] * 5, [1, 100, 2]])
def test_async_rechunk_cuts_exactly(sizes: list[int]) -> None:
    pieces = [os.urandom(n) for n in sizes]

    async def source() -> AsyncIterator[bytes]:
        for p in pieces:
            yield p

    async def collect() -> list[bytes]:
        return [bytes(v) async for v in arechunk(source(), 8)]  # copied before the next piece

    out = asyncio.run(collect())
    whole = b"".join(pieces)
    assert b"".join(out) == whole
    assert all(len(c) == 8 for c in out[:-1]) and (not out or 0 < len(out[-1]) <= 8)
    assert len(out) == -(-len(whole) // 8)


@given(st.binary(max_size=3000))
def test_read_data_is_a_plain_read_blob_response(data: bytes) -> None:
    assert blob_pb2.ReadBlobResponse.FromString(encode_read_data(data)).data == data


# --- decoding WriteChunkRequest without copying: must agree with protobuf ----------------------

_request_fields = st.fixed_dictionaries(
    {},
    optional={
        "upload_id": st.text(max_size=40),
        "offset": st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "crc32": st.integers(min_value=0, max_value=2**32 - 1),
        "data": st.binary(max_size=600),
    },
)


def _as_tuple(msg: blob_pb2.WriteChunkRequest) -> tuple[object, ...]:
    return (
        msg.upload_id,
        msg.offset if msg.HasField("offset") else None,
        bytes(msg.data),
        msg.crc32 if msg.HasField("crc32") else None,
    )


def _decoded(raw: bytes) -> tuple[object, ...]:
    chunk = decode_write_chunk(raw)
    return (chunk.upload_id, chunk.offset, bytes(chunk.data), chunk.crc32)


@given(_request_fields)
def test_decoder_reads_what_protobuf_writes(fields: dict[str, object]) -> None:
    msg = blob_pb2.WriteChunkRequest(**fields)  # type: ignore[arg-type]
    assert _decoded(msg.SerializeToString()) == _as_tuple(msg)


@given(_request_fields, st.data())
def test_decoder_agrees_with_protobuf_on_any_bytes(fields: dict[str, object], data: st.DataObject) -> None:
    """Mutated, truncated, extended messages: parsed alike, or refused by both."""
    raw = bytearray(blob_pb2.WriteChunkRequest(**fields).SerializeToString())  # type: ignore[arg-type]
    for _ in range(data.draw(st.integers(0, 3))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw += data.draw(st.binary(max_size=12))
    cut = data.draw(st.integers(0, len(raw)))
    raw = raw[:cut] if data.draw(st.booleans()) else raw
    try:
        expected = _as_tuple(blob_pb2.WriteChunkRequest.FromString(bytes(raw)))
    except DecodeError:
        with pytest.raises(WireError):
            decode_write_chunk(bytes(raw))
        return
    assert _decoded(bytes(raw)) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x1a\x05abc", "truncated length-delimited field"),
        (b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "varint too long"),
        (b"\x25\x01\x02", "truncated fixed32"),
        (b"\x0a\x02\xc3\x28", "upload_id is not UTF-8"),
        (b"\x0b", "unsupported wire type 3"),
        (b"\x00\x00", "field number 0"),
    ],
)
def test_decoder_names_what_is_wrong(raw: bytes, why: str) -> None:
    with pytest.raises(WireError, match=why):
        decode_write_chunk(raw)


def test_decoded_data_is_a_view_not_a_copy() -> None:
    raw = encode_write_chunk(b"x" * 1000, upload_id="u", offset=7, crc32=crc32(b"x" * 1000))
    chunk = decode_write_chunk(raw)
    assert isinstance(chunk.data, memoryview) and chunk.data.obj is raw
    assert (chunk.upload_id, chunk.offset, chunk.crc32) == ("u", 7, zlib.crc32(b"x" * 1000))


@given(st.binary(max_size=5000))
def test_crc32_is_zlibs(data: bytes) -> None:
    assert crc32(data) == zlib.crc32(data)
    assert crc32(memoryview(data)[1:]) == zlib.crc32(data[1:])
