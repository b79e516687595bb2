"""Persisted Docker imports in the replication database, so a restarted service finishes them.

Each ``ImportDockerImage`` whose checks passed is one row, written before any registry traffic:
the request as received *without* its credential headers (registry passwords are never stored),
whether credentials came with it, and the import's state (``running`` / ``done`` / ``failed``; finished ones are kept six hours).
At start-up the service pulls every ``running`` row again in the background. A resumed pull runs
anonymously: one that needed credentials fails with the registry's answer, recorded as ``failed``.
Re-running is safe: layers already in the catalog are reused, committed ones are not redone.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import json_format
from imgapi.v1 import docker_pb2
from sqlalchemy import Boolean, Column, Float, String, Table, Text, delete, insert, select, update

from replication.adapters.store import KEEP_SECONDS, Store, metadata

docker_imports = Table(
    "docker_imports",
    metadata,
    Column("id", String(36), primary_key=True),
    #: The ImportDockerImageRequest (JSON), credential headers removed.
    Column("request", Text, nullable=False),
    Column("credentials", Boolean, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("error", Text, nullable=False, default=""),
    Column("created_at", String(32), nullable=False),
    #: Wall-clock time the import ended (epoch seconds), None while it runs.
    Column("finished", Float, nullable=True),
)


@dataclass(frozen=True)
class DockerImportRecord:
    id: str
    request: docker_pb2.ImportDockerImageRequest
    credentials: bool
    state: str
    error: str


class DockerImportRecords:
    """The ``docker_imports`` table of a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        metadata.create_all(store.engine, tables=[docker_imports])

    def start(self, req: docker_pb2.ImportDockerImageRequest) -> str:
        kept = docker_pb2.ImportDockerImageRequest()
        kept.CopyFrom(req)
        kept.ClearField("registry_auth")
        kept.ClearField("registry_config")
        rid = str(uuidlib.uuid4())
        with self.store.transaction() as c:
            c.execute(
                insert(docker_imports).values(
                    id=rid,
                    request=json_format.MessageToJson(kept),
                    credentials=req.HasField("registry_auth") or req.HasField("registry_config"),
                    state="running",
                    error="",
                    created_at=datetime.now(UTC).isoformat(),
                )
            )
        return rid

    def finish(self, rid: str, error: str | None) -> None:
        """Mark the import ``done`` (``error`` None) or ``failed``; drop records finished long ago."""
        now = time.time()
        values = {"state": "failed" if error is not None else "done", "error": error or "", "finished": now}
        with self.store.transaction() as c:
            c.execute(update(docker_imports).where(docker_imports.c.id == rid).values(**values))
            c.execute(delete(docker_imports).where(docker_imports.c.finished < now - KEEP_SECONDS))

    def _rows(self, *where: object) -> list[DockerImportRecord]:
        q = select(docker_imports).where(*where).order_by(docker_imports.c.created_at)  # type: ignore[arg-type]
        with self.store.engine.connect() as c:
            rows = c.execute(q).mappings().all()
        return [
            DockerImportRecord(
                r["id"],
                json_format.Parse(r["request"], docker_pb2.ImportDockerImageRequest()),
                bool(r["credentials"]),
                r["state"],
                r["error"],
            )
            for r in rows
        ]

    def get(self, rid: str) -> DockerImportRecord | None:
        found = self._rows(docker_imports.c.id == rid)
        return found[0] if found else None

    def unfinished(self) -> list[DockerImportRecord]:
        return self._rows(docker_imports.c.state == "running")

    def all(self) -> list[DockerImportRecord]:
        return self._rows()
