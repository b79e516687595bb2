"""Test data: deterministic pseudo-random bytes and their digests."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from typing import TypedDict

from blob_service.settings import MIB


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def pieces(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class Expected(TypedDict):
    sha1: str
    md5: str
    sha256: str


def expected(data: bytes) -> Expected:
    """The digests as keyword arguments of the client."""
    return {
        "sha1": hashlib.sha1(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def digests(data: bytes) -> dict[str, str]:
    e = expected(data)
    return {"sha1": e["sha1"], "md5": e["md5"], "sha256": e["sha256"]}
