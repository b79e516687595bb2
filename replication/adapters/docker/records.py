"""Persisted Docker imports in the replication database, so a restarted service finishes them.

Each ``ImportDockerImage`` whose checks passed is one row, written before any registry traffic:
the request as received *without* its credential headers (registry passwords are never stored),
whether credentials came with it, and the import's state (``running`` / ``done`` / ``failed``; finished ones are kept six hours).
A running row is held by the process pulling it (an owner and a lease it renews,
:mod:`replication.adapters.leases`); when the lease runs out (that process is gone) one live process claims
the row and pulls it again in the background, at start-up or later. A resumed pull runs
anonymously: one that needed credentials fails with the registry's answer, recorded as ``failed``.
Re-running is safe: layers already in the catalog are reused, committed ones are not redone.

Every layer blob an import puts in the blob service is listed (``docker_import_blobs``) as soon as
it is committed, until the import ends (then each blob is held by its layer image, or was deleted
by the failure). A process that takes over a left import first deletes the listed blobs no layer
image holds: those a killed process downloaded and never recorded in the catalog.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import json_format
from imgapi.v1 import docker_pb2
from sqlalchemy import Boolean, Column, Float, String, Table, Text, delete, insert, select, update

from replication.adapters.leases import DEFAULT_LEASE_SECONDS, Lease, add_lease_columns, lease_columns
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
    *lease_columns(),
)


#: The layer blobs an unfinished import put in the blob service (rows go when the import ends).
docker_import_blobs = Table(
    "docker_import_blobs",
    metadata,
    Column("import_id", String(36), primary_key=True),
    Column("blob_id", String(64), primary_key=True),
    Column("layer_uuid", String(36), nullable=False),
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

    def __init__(self, store: Store, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.store = store
        metadata.create_all(store.engine, tables=[docker_imports, docker_import_blobs])
        add_lease_columns(store.engine, docker_imports)
        #: This process's hold on the imports it pulls.
        self.lease = Lease(store, docker_imports, docker_imports.c.state == "running", lease_seconds)

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
                    **self.lease.held(),
                )
            )
        return rid

    def finish(self, rid: str, error: str | None) -> None:
        """Mark the import ``done`` (``error`` None) or ``failed``; drop records finished long ago."""
        now = time.time()
        values = {"state": "failed" if error is not None else "done", "error": error or "", "finished": now}
        with self.store.transaction() as c:
            c.execute(update(docker_imports).where(docker_imports.c.id == rid).values(**values))
            c.execute(delete(docker_import_blobs).where(docker_import_blobs.c.import_id == rid))
            c.execute(delete(docker_imports).where(docker_imports.c.finished < now - KEEP_SECONDS))

    def stored(self, rid: str, layer_uuid: str, blob_id: str) -> None:
        """List a layer blob the running import ``rid`` put in the blob service."""
        row = {"import_id": rid, "blob_id": blob_id, "layer_uuid": layer_uuid}
        with self.store.transaction() as c:
            c.execute(insert(docker_import_blobs).values(**row))

    def blobs(self, rid: str) -> list[tuple[str, str]]:
        """(layer uuid, blob id) of the blobs listed for ``rid``."""
        q = select(docker_import_blobs.c.layer_uuid, docker_import_blobs.c.blob_id)
        with self.store.engine.connect() as c:
            rows = c.execute(q.where(docker_import_blobs.c.import_id == rid)).all()
        return [(r.layer_uuid, r.blob_id) for r in rows]

    def forget_blob(self, rid: str, blob_id: str) -> None:
        t = docker_import_blobs.c
        with self.store.transaction() as c:
            c.execute(delete(docker_import_blobs).where(t.import_id == rid, t.blob_id == blob_id))

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
        """Running imports whose process is gone (their lease ran out): each is for :meth:`claim`."""
        return self._rows(self.lease.unfinished, self.lease.expired())

    def claim(self, rid: str) -> bool:
        """Take over an unfinished import; True for the one process that gets it."""
        return self.lease.claim(docker_imports.c.id == rid)

    def all(self) -> list[DockerImportRecord]:
        return self._rows()
