"""Test data: deterministic pseudo-random bytes and their digests."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator

from blob_service.settings import MIB


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def pieces(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def digests(data: bytes) -> dict[str, str]:
    return {
        "sha1": hashlib.sha1(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()
