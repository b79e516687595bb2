"""blob_client.wire.read_data: the bytes of a ReadBlobResponse, served without a copy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imgapi.v1 import blob_pb2

from blob_client.wire import read_data


@given(st.binary(max_size=5000))
def test_data_only_messages_are_sliced_in_place(data: bytes) -> None:
    raw = blob_pb2.ReadBlobResponse(data=data).SerializeToString()
    view = read_data(raw)
    assert bytes(view) == data
    if data:
        assert view.obj is raw  # a view into the received buffer, not a copy


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 1 << 20])
def test_varint_lengths(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert bytes(read_data(blob_pb2.ReadBlobResponse(data=data).SerializeToString())) == data


def test_first_message_with_info_is_parsed() -> None:
    msg = blob_pb2.ReadBlobResponse(data=b"abc", info=blob_pb2.BlobInfo(blob_id="b", size=3))
    assert bytes(read_data(msg.SerializeToString())) == b"abc"
    assert (
        bytes(read_data(blob_pb2.ReadBlobResponse(info=blob_pb2.BlobInfo(size=0)).SerializeToString())) == b""
    )
