"""Domain records <-> protobuf messages."""

from __future__ import annotations

from imgapi.v1 import blob_pb2

from blob_service.domain.model import BlobMeta, UploadState


def upload_status(state: UploadState, checkpoint_bytes: int) -> blob_pb2.UploadStatus:
    return blob_pb2.UploadStatus(
        upload_id=state.upload_id,
        committed_offset=state.offset,
        expected_size=state.expected_size,
        max_size=state.max_size,
        expires_at=state.expires_at,
        checkpoint_bytes=checkpoint_bytes,
    )


def blob_info(meta: BlobMeta) -> blob_pb2.BlobInfo:
    d = meta.digests
    return blob_pb2.BlobInfo(
        blob_id=meta.blob_id,
        size=meta.size,
        digests=blob_pb2.Digests(sha1=d.sha1, md5=d.md5, sha256=d.sha256),
        content_md5=d.content_md5,
        created_at=meta.created_at,
        stor=meta.stor,
    )


def digests_dict(d: blob_pb2.Digests) -> dict[str, str]:
    return {"sha1": d.sha1, "md5": d.md5, "sha256": d.sha256}
