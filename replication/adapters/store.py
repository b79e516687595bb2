"""Persisted replication state: jobs, per-image progress, conflicts (SQLAlchemy; SQLite or PostgreSQL).

The replication service owns its database; the schema is created with ``create_all`` (no Alembic:
three small tables here, the import jobs' table of :mod:`replication.adapters.import_records` and the
Docker imports' of :mod:`replication.adapters.docker.records`). Every write is its own short transaction so that a killed
process loses at most the step it was doing, which the copier redoes idempotently.
"""

from __future__ import annotations

import json
import threading
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)

metadata = MetaData()

#: How long finished import jobs and Docker imports stay listable.
KEEP_SECONDS = 6 * 3600

jobs = Table(
    "replication_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("spec", Text, nullable=False),  # JSON of replication.handlers.jobs.spec.JobSpec
    Column("state", String(16), nullable=False),  # running | paused | failed
    Column("cursor", BigInteger, nullable=False, default=0),
    Column("source_head", BigInteger, nullable=False, default=0),
    Column("bytes_copied", BigInteger, nullable=False, default=0),
    Column("images_copied", BigInteger, nullable=False, default=0),
    Column("synced", Integer, nullable=False, default=0),
    Column("pending", BigInteger, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

progress = Table(
    "replication_progress",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("image_uuid", String(36), primary_key=True),
    Column("status", String(16), nullable=False),  # copying | done | failed | conflict
    Column("upload_id", String(128), nullable=False, default=""),
    Column("file_sha1", String(40), nullable=False, default=""),
    Column("bytes_done", BigInteger, nullable=False, default=0),
    Column("bytes_total", BigInteger, nullable=False, default=0),
    Column("resumed_from", BigInteger, nullable=False, default=0),
    Column("fingerprint", String(64), nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Column("updated_at", String(32), nullable=False),
)

conflicts = Table(
    "replication_conflicts",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("image_uuid", String(36), primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("detected_at", String(32), nullable=False),
)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class JobRow:
    id: str
    spec: dict[str, Any]
    state: str
    cursor: int
    source_head: int
    bytes_copied: int
    images_copied: int
    synced: bool
    pending: int
    last_error: str
    created_at: str
    updated_at: str
    conflicts: list[dict[str, str]] = field(default_factory=list)
    active: list[dict[str, Any]] = field(default_factory=list)
    errors: int = 0


@dataclass
class ImageCopyState:
    """A job's stored state of one image copy (its upload, bytes sent, attempts), read to resume it."""

    status: str = ""
    upload_id: str = ""
    file_sha1: str = ""
    bytes_done: int = 0
    bytes_total: int = 0
    resumed_from: int = 0
    fingerprint: str = ""
    attempts: int = 0
    last_error: str = ""


def make_store_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return eng
    return create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, url: str) -> None:
        self.engine = make_store_engine(url)
        metadata.create_all(self.engine)
        # SQLite allows one writer: serialize our own writes instead of hitting "database is locked".
        self._lock = threading.Lock() if url.startswith("sqlite") else None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One short write transaction (serialized with the other writers on SQLite)."""
        if self._lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._lock, self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    # --- jobs ----------------------------------------------------------------------------------------

    def create_job(self, spec: dict[str, Any]) -> str:
        job_id = str(uuidlib.uuid4())
        t = now_iso()
        with self.transaction() as c:
            c.execute(
                insert(jobs).values(
                    id=job_id,
                    spec=json.dumps(spec),
                    state="running",
                    cursor=0,
                    source_head=0,
                    bytes_copied=0,
                    images_copied=0,
                    synced=0,
                    pending=0,
                    last_error="",
                    created_at=t,
                    updated_at=t,
                )
            )
        return job_id

    def _job(self, r: Any) -> JobRow:
        return JobRow(
            id=r.id,
            spec=json.loads(r.spec),
            state=r.state,
            cursor=int(r.cursor),
            source_head=int(r.source_head),
            bytes_copied=int(r.bytes_copied),
            images_copied=int(r.images_copied),
            synced=bool(r.synced),
            pending=int(r.pending),
            last_error=r.last_error,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )

    def job_ids(self) -> list[str]:
        with self.engine.connect() as c:
            return [r.id for r in c.execute(select(jobs.c.id).order_by(jobs.c.created_at))]

    def get_job(self, job_id: str, *, details: bool = False) -> JobRow | None:
        with self.engine.connect() as c:
            r = c.execute(select(jobs).where(jobs.c.id == job_id)).first()
            if r is None:
                return None
            job = self._job(r)
            job.errors = int(
                c.execute(
                    select(func.count())
                    .select_from(progress)
                    .where(progress.c.job_id == job_id, progress.c.status == "failed")
                ).scalar()
                or 0
            )
            if details:
                job.conflicts = [
                    {
                        "image_uuid": x.image_uuid,
                        "reason": x.reason,
                        "detail": x.detail,
                        "detected_at": x.detected_at,
                    }
                    for x in c.execute(
                        select(conflicts)
                        .where(conflicts.c.job_id == job_id)
                        .order_by(conflicts.c.detected_at)
                    )
                ]
                job.active = [
                    {
                        "image_uuid": x.image_uuid,
                        "status": x.status,
                        "upload_id": x.upload_id,
                        "bytes_done": int(x.bytes_done),
                        "bytes_total": int(x.bytes_total),
                        "attempts": int(x.attempts),
                        "last_error": x.last_error,
                        "resumed_from": int(x.resumed_from),
                    }
                    for x in c.execute(
                        select(progress)
                        .where(progress.c.job_id == job_id, progress.c.status.in_(("copying", "failed")))
                        .order_by(progress.c.updated_at)
                        .limit(100)
                    )
                ]
            return job

    def update_job(self, job_id: str, **values: Any) -> None:
        with self.transaction() as c:
            c.execute(update(jobs).where(jobs.c.id == job_id).values(updated_at=now_iso(), **values))

    def add_counters(self, job_id: str, *, bytes_copied: int = 0, images_copied: int = 0) -> None:
        with self.transaction() as c:
            c.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    bytes_copied=jobs.c.bytes_copied + bytes_copied,
                    images_copied=jobs.c.images_copied + images_copied,
                    updated_at=now_iso(),
                )
            )

    def delete_job(self, job_id: str) -> bool:
        with self.transaction() as c:
            n = c.execute(delete(jobs).where(jobs.c.id == job_id)).rowcount
            c.execute(delete(progress).where(progress.c.job_id == job_id))
            c.execute(delete(conflicts).where(conflicts.c.job_id == job_id))
        return bool(n)

    # --- per-image progress --------------------------------------------------------------------------

    def get_progress(self, job_id: str, image_uuid: str) -> ImageCopyState | None:
        with self.engine.connect() as c:
            r = c.execute(
                select(progress).where(progress.c.job_id == job_id, progress.c.image_uuid == image_uuid)
            ).first()
        if r is None:
            return None
        return ImageCopyState(
            r.status,
            r.upload_id,
            r.file_sha1,
            int(r.bytes_done),
            int(r.bytes_total),
            int(r.resumed_from),
            r.fingerprint,
            int(r.attempts),
            r.last_error,
        )

    def set_progress(self, job_id: str, image_uuid: str, **values: Any) -> None:
        """Upsert (portable: update, then insert when nothing was updated)."""
        values["updated_at"] = now_iso()
        with self.transaction() as c:
            n = c.execute(
                update(progress)
                .where(progress.c.job_id == job_id, progress.c.image_uuid == image_uuid)
                .values(**values)
            ).rowcount
            if not n:
                base: dict[str, Any] = {"status": "copying"}
                base.update(values)
                c.execute(insert(progress).values(job_id=job_id, image_uuid=image_uuid, **base))

    def forget_progress(self, job_id: str, image_uuid: str) -> None:
        with self.transaction() as c:
            c.execute(
                delete(progress).where(progress.c.job_id == job_id, progress.c.image_uuid == image_uuid)
            )

    def images_with_status(self, job_id: str, status: str) -> list[str]:
        with self.engine.connect() as c:
            return [
                r.image_uuid
                for r in c.execute(
                    select(progress.c.image_uuid).where(
                        progress.c.job_id == job_id, progress.c.status == status
                    )
                )
            ]

    def fingerprints(self, job_id: str) -> dict[str, tuple[str, str]]:
        """image uuid -> (status, fingerprint) of every image the job knows."""
        with self.engine.connect() as c:
            return {
                r.image_uuid: (r.status, r.fingerprint)
                for r in c.execute(
                    select(progress.c.image_uuid, progress.c.status, progress.c.fingerprint).where(
                        progress.c.job_id == job_id
                    )
                )
            }

    # --- conflicts -----------------------------------------------------------------------------------

    def record_conflict(self, job_id: str, image_uuid: str, reason: str, detail: str) -> bool:
        """Record a conflict; False when it was already recorded."""
        with self.transaction() as c:
            exists = c.execute(
                select(conflicts.c.reason).where(
                    conflicts.c.job_id == job_id, conflicts.c.image_uuid == image_uuid
                )
            ).first()
            if exists is not None:
                c.execute(
                    update(conflicts)
                    .where(conflicts.c.job_id == job_id, conflicts.c.image_uuid == image_uuid)
                    .values(reason=reason, detail=detail)
                )
                return False
            c.execute(
                insert(conflicts).values(
                    job_id=job_id, image_uuid=image_uuid, reason=reason, detail=detail, detected_at=now_iso()
                )
            )
            return True

    def clear_conflict(self, job_id: str, image_uuid: str) -> None:
        with self.transaction() as c:
            c.execute(
                delete(conflicts).where(conflicts.c.job_id == job_id, conflicts.c.image_uuid == image_uuid)
            )
