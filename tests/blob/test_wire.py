"""Hand-encoded WriteChunks requests, and the gateway's re-chunking into them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imgapi.v1 import blob_pb2

from blob_service.client import encode_write_chunk
from blob_service.wire import encode_read_data
from gateway.files import rechunk


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
def test_gateway_rechunk_cuts_exactly(sizes: list[int]) -> None:
    pieces = [os.urandom(n) for n in sizes]

    async def source() -> AsyncIterator[bytes]:
        for p in pieces:
            yield p

    async def collect() -> list[bytes]:
        return [bytes(v) async for v in rechunk(source(), 8)]  # copied before the next piece

    out = asyncio.run(collect())
    whole = b"".join(pieces)
    assert b"".join(out) == whole
    assert all(len(c) == 8 for c in out[:-1]) and (not out or 0 < len(out[-1]) <= 8)
    assert len(out) == -(-len(whole) // 8)


@given(st.binary(max_size=3000))
def test_read_data_is_a_plain_read_blob_response(data: bytes) -> None:
    assert blob_pb2.ReadBlobResponse.FromString(encode_read_data(data)).data == data
