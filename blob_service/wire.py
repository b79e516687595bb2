"""Protobuf wire encoding of the two messages that carry file bytes, written by hand.

Building a message and serializing it copies a 1 MiB payload twice; these encoders copy it once
(into the result). The results are ordinary protobuf bytes: any peer parses them as usual.
"""

from __future__ import annotations

_DATA_TAG = (
    b"\x0a"  # field 1, wire type 2 (length-delimited): WriteChunkRequest.upload_id, ReadBlobResponse.data
)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def encode_read_data(data: bytes | bytearray | memoryview) -> bytes:
    """A serialized ``ReadBlobResponse`` holding only ``data`` (every message after the first)."""
    if not len(data):
        return b""
    return b"".join((_DATA_TAG, varint(len(data)), data))
