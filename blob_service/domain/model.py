"""The records the service keeps: upload sessions and committed blobs (JSON in the backend)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from blob_service.domain.digests import Digests

STATE_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@dataclass(frozen=True)
class BlobMeta:
    """A committed blob."""

    blob_id: str
    size: int
    digests: Digests
    created_at: str
    stor: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> BlobMeta:
        d = json.loads(raw)
        return cls(
            blob_id=d["blob_id"],
            size=int(d["size"]),
            digests=Digests(**d["digests"]),
            created_at=d["created_at"],
            stor=d["stor"],
        )


@dataclass(frozen=True)
class UploadState:
    """One upload session as persisted in the backend: enough for any replica to continue it."""

    upload_id: str
    blob_id: str  # where the blob will live once committed (S3 multipart uploads need the key early)
    offset: int  # committed (durable) bytes
    expected_size: int
    max_size: int
    expected: dict[str, str]  # digests to verify at commit (hex, lower-case)
    ttl_seconds: int
    expires_at: str
    label: str = ""
    #: Saved digest state at ``offset`` (digests.DigestSet.export), absent when not exportable.
    hash_state: dict[str, str] | None = None
    #: Backend bookkeeping (S3: multipart upload id, parts, tail object).
    staging: dict[str, Any] = field(default_factory=dict)
    #: Set once committed: repeating the commit returns it.
    committed: BlobMeta | None = None
    version: int = STATE_VERSION

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= parse_iso(self.expires_at)

    def touched(self, now: datetime | None = None) -> UploadState:
        """A copy whose expiry is pushed ``ttl_seconds`` from now."""
        return replace(self, expires_at=iso((now or utcnow()) + timedelta(seconds=self.ttl_seconds)))

    def to_json(self) -> bytes:
        d = asdict(self)
        if self.committed is not None:
            d["committed"] = json.loads(self.committed.to_json())
        return json.dumps(d, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> UploadState:
        d = json.loads(raw)
        committed = d.pop("committed", None)
        return cls(**d, committed=BlobMeta.from_json(json.dumps(committed).encode()) if committed else None)
