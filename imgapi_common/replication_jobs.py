"""Replication jobs as JSON: replication.proto's ``Job`` with snake_case keys and every field present,
as the gateway's ``/replication/jobs`` routes answer it and the CLI prints it."""

from __future__ import annotations

from typing import Any

from imgapi.v1 import replication_pb2

#: The string filters of a job spec (``tags`` is the map beside them).
FILTER_KEYS = ("owner", "name", "type", "os", "channel", "public")


def spec_json(s: replication_pb2.JobSpec) -> dict[str, Any]:
    f = s.filters
    return {
        "name": s.name,
        "source_kind": "rest" if s.source_kind == replication_pb2.JobSpec.SOURCE_REST else "grpc",
        "source_catalog": s.source_catalog,
        "source_blob": s.source_blob,
        "source_url": s.source_url,
        "filters": {**{k: getattr(f, k) for k in FILTER_KEYS}, "tags": dict(sorted(f.tags.items()))},
        "propagate_deletes": s.propagate_deletes,
        "concurrency": s.concurrency,
        "bandwidth_limit": s.bandwidth_limit,
        "poll_seconds": s.poll_seconds,
    }


def job_json(j: replication_pb2.Job) -> dict[str, Any]:
    """A job as the gRPC API reports it (replication.proto ``Job``)."""
    return {
        "id": j.id,
        "spec": spec_json(j.spec),
        "state": j.state,
        "cursor": j.cursor,
        "source_head": j.source_head,
        "lag": j.lag,
        "bytes_copied": j.bytes_copied,
        "images_copied": j.images_copied,
        "errors": j.errors,
        "last_error": j.last_error,
        "conflicts": [
            {"image_uuid": c.image_uuid, "reason": c.reason, "detail": c.detail, "detected_at": c.detected_at}
            for c in j.conflicts
        ],
        "active": [
            {
                "image_uuid": a.image_uuid,
                "status": a.status,
                "upload_id": a.upload_id,
                "bytes_done": a.bytes_done,
                "bytes_total": a.bytes_total,
                "attempts": a.attempts,
                "last_error": a.last_error,
            }
            for a in j.active
        ],
        "synced": j.synced,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
    }
