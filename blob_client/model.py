"""What the blob clients return and the requests both build: plain values, no gRPC calls."""

from __future__ import annotations

from dataclasses import dataclass

from imgapi.v1 import blob_pb2


@dataclass(frozen=True)
class UploadInfo:
    upload_id: str
    committed_offset: int
    expected_size: int
    max_size: int
    expires_at: str
    checkpoint_bytes: int

    @classmethod
    def of(cls, m: blob_pb2.UploadStatus) -> UploadInfo:
        return cls(
            m.upload_id, m.committed_offset, m.expected_size, m.max_size, m.expires_at, m.checkpoint_bytes
        )


@dataclass(frozen=True)
class BlobInfo:
    blob_id: str
    size: int
    sha1: str
    md5: str
    sha256: str
    content_md5: str  # base64 MD5, for the HTTP Content-MD5 header
    created_at: str
    stor: str

    @classmethod
    def of(cls, m: blob_pb2.BlobInfo) -> BlobInfo:
        d = m.digests
        return cls(m.blob_id, m.size, d.sha1, d.md5, d.sha256, m.content_md5, m.created_at, m.stor)


@dataclass(frozen=True)
class UploadSpec:
    """What StartUpload is told: the limits, the digests to verify at commit, the expiry, a label."""

    expected_size: int = 0
    max_size: int = 0
    sha1: str | None = None
    md5: str | None = None
    sha256: str | None = None
    ttl_seconds: int = 0
    label: str = ""

    def request(self) -> blob_pb2.StartUploadRequest:
        return blob_pb2.StartUploadRequest(
            expected_size=self.expected_size,
            max_size=self.max_size,
            expected=digests(self.sha1, self.md5, self.sha256),
            ttl_seconds=self.ttl_seconds,
            label=self.label,
        )


def digests(sha1: str | None, md5: str | None, sha256: str | None) -> blob_pb2.Digests:
    return blob_pb2.Digests(sha1=sha1 or "", md5=md5 or "", sha256=sha256 or "")


def commit_request(
    upload_id: str,
    *,
    sha1: str | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    expected_size: int = 0,
) -> blob_pb2.CommitUploadRequest:
    return blob_pb2.CommitUploadRequest(
        upload_id=upload_id, expected=digests(sha1, md5, sha256), expected_size=expected_size
    )
