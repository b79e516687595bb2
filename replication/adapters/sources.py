"""Where images come from, as the copier sees them: :class:`SourceImage` values (the image's REST
view, what an AdminImportImage body is made of, plus what is needed to fetch its file and icon) read
through a :class:`Source`. The sources themselves: :mod:`replication.adapters.grpc_source` (another imgapi:
change feed + ranged blob reads) and :mod:`replication.adapters.rest_source` (any IMGAPI-compatible server:
ListImages with markers + GetImageFile, polled).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

#: gRPC channel options: detect a dead peer (a dropped link) within seconds.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


class SourceError(Exception):
    """The source failed (network, HTTP error, truncated stream). ``transient`` (the default) says a
    retry may succeed; a refused URL, a missing file or an oversized one is not retried."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class FileRef:
    sha1: str
    size: int
    compression: str
    content_md5: str = ""  # base64; "" when unknown (REST listings)
    dataset_guid: str | None = None
    blob_id: str = ""  # gRPC sources


@dataclass(frozen=True)
class IconRef:
    sha1: str = ""  # "" when unknown (REST listings say only "icon": true)
    size: int = 0
    content_type: str = ""
    blob_id: str = ""


@dataclass(frozen=True)
class SourceImage:
    uuid: str
    manifest: dict[str, Any]  # the REST image object (v2 view)
    file: FileRef | None
    icon: IconRef | None

    @property
    def activated(self) -> bool:
        return self.manifest.get("state") in ("active", "disabled")

    @property
    def owner(self) -> str:
        return str(self.manifest.get("owner", ""))

    @property
    def origin(self) -> str | None:
        o = self.manifest.get("origin")
        return o if isinstance(o, str) and o else None

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class SourceEvent:
    cursor: int
    head: int
    uuid: str
    kind: str
    image: SourceImage | None  # None for deletes


class Source(Protocol):
    def get(self, uuid: str) -> SourceImage | None: ...

    def read_file(self, img: SourceImage, offset: int) -> Iterator[bytes]: ...

    def read_icon(self, img: SourceImage) -> tuple[bytes, str]: ...

    def close(self) -> None: ...


def md5_hex(content_md5_b64: str) -> str | None:
    if not content_md5_b64:
        return None
    try:
        return base64.b64decode(content_md5_b64).hex()
    except ValueError:
        return None
