"""gateway/routes/tus.py's header parsing and formatting, without a server (fast enough for scripts/mutation).

The upload flow itself is tested over HTTP in test_tus.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import zlib
from collections.abc import AsyncIterator

import pytest

from gateway.routes.tus import (
    CHECKSUMS,
    TUS_VERSION,
    _parse_checksum,
    _within,
    http_expires,
    parse_metadata,
    tus_error,
)
from imgapi_common.errors import ImgapiError


def test_http_expires() -> None:
    assert http_expires("2024-05-01T12:00:00Z") == "Wed, 01 May 2024 12:00:00 GMT"
    assert http_expires("2024-05-01T12:00:00.5+00:00") == "Wed, 01 May 2024 12:00:00 GMT"
    assert http_expires("") is None
    assert http_expires("soon") is None


@pytest.mark.parametrize("algo", ["sha1", "md5", "sha256"])
def test_checksums_are_the_named_digests(algo: str) -> None:
    h = CHECKSUMS[algo]()
    h.update(b"hello ")
    h.update(b"world")
    assert h.digest() == hashlib.new(algo, b"hello world").digest()


def test_crc32_is_big_endian_and_incremental() -> None:
    h = CHECKSUMS["crc32"]()
    assert h.digest() == b"\x00\x00\x00\x00"
    h.update(b"hello ")
    h.update(b"world")
    assert h.digest() == zlib.crc32(b"hello world").to_bytes(4, "big") == bytes.fromhex("0d4a1185")


def test_upload_checksum_header() -> None:
    digest = hashlib.sha1(b"x").digest()
    b64 = base64.b64encode(digest).decode()
    assert _parse_checksum(None) is None
    assert _parse_checksum(f"sha1 {b64}") == ("sha1", digest)
    assert _parse_checksum(f"  SHA1   {b64}  ") == ("sha1", digest)
    assert _parse_checksum("crc32 AAAAAA==") == ("crc32", b"\x00\x00\x00\x00")


@pytest.mark.parametrize(
    "header,message",
    [
        ("sha512 AAAA", "unsupported checksum algorithm 'sha512'"),
        ("", "unsupported checksum algorithm ''"),
        ("sha1 not*base64", "invalid Upload-Checksum value"),
        ("sha1 AA*AA", "invalid Upload-Checksum value"),  # no character is skipped
    ],
)
def test_bad_upload_checksum_header(header: str, message: str) -> None:
    with pytest.raises(ImgapiError) as e:
        _parse_checksum(header)
    assert (e.value.code, e.value.message) == ("BadRequestError", message)


def test_tus_error_body_and_headers() -> None:
    r = tus_error(409, "Conflict", "offset", {"Upload-Offset": "3"})
    assert r.status_code == 409
    assert json.loads(bytes(r.body)) == {"code": "Conflict", "message": "offset"}
    assert r.headers["Tus-Resumable"] == TUS_VERSION == "1.0.0"
    assert r.headers["Upload-Offset"] == "3"
    assert tus_error(412, "PreconditionFailed", "v").headers["Tus-Resumable"] == "1.0.0"


async def pieces(*chunks: bytes) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


async def drain(source: AsyncIterator[bytes]) -> list[bytes]:
    return [p async for p in source]


def test_a_patch_body_is_cut_past_the_room_left() -> None:
    assert asyncio.run(drain(_within(pieces(b"ab", b"cd"), 4, 10))) == [b"ab", b"cd"]
    got: list[bytes] = []

    async def collect() -> None:
        async for p in _within(pieces(b"ab", b"cd", b"e"), 4, 10):
            got.append(p)

    with pytest.raises(ImgapiError) as e:
        asyncio.run(collect())
    assert (e.value.code, e.value.message) == ("BadRequestError", "the body would exceed Upload-Length 10")
    assert got == [b"ab", b"cd"]  # nothing past the room was passed on


def test_upload_metadata_skips_empty_items_and_names_a_bad_value() -> None:
    assert parse_metadata("a YQ==,, ,b Yg==,c") == {"a": "a", "b": "b", "c": ""}
    assert parse_metadata(None) == {}
    with pytest.raises(ImgapiError) as e:
        parse_metadata("ok YQ==,sha1 !!")
    assert (e.value.code, e.value.message) == ("BadRequestError", "invalid Upload-Metadata value for 'sha1'")
