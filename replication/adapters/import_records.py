"""Persisted import jobs (AdminImportRemoteImage, ImportFromDatacenter) in the replication database.

One row per job holding its WFAPI-shaped document; it is rewritten at every transition (queued,
each step's result, the end), so a restarted service still answers ``GetImportJob`` for every job
it ran. A running job is held by its process (an owner and a lease it renews,
:mod:`replication.adapters.leases`); a job whose lease ran out (its process is gone: its work, an asyncio
task there, is gone too) is closed as canceled by one live process, at start-up or later, with one
conditional update, so processes sharing the database neither close each other's live jobs nor
close one job twice. What a closed job created stays as the rollback left it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Column, ColumnElement, Float, String, Table, Text, delete, insert, or_, select, update

from replication.adapters.leases import DEFAULT_LEASE_SECONDS, Lease, add_lease_columns, lease_columns
from replication.adapters.store import Store, metadata

import_jobs = Table(
    "import_jobs",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("image_uuid", String(36), nullable=False, index=True),
    Column("task", String(64), nullable=False),
    Column("execution", String(16), nullable=False),
    Column("created_at", String(32), nullable=False),
    #: Wall-clock time the job finished (epoch seconds), None while it runs.
    Column("finished", Float, nullable=True),
    Column("doc", Text, nullable=False),
    *lease_columns(),
)


class ImportRecords:
    """The ``import_jobs`` table of a :class:`Store`; finished jobs are kept ``keep_seconds``."""

    def __init__(
        self, store: Store, keep_seconds: float, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.store = store
        self.keep_seconds = keep_seconds
        metadata.create_all(store.engine, tables=[import_jobs])
        add_lease_columns(store.engine, import_jobs)
        #: This process's hold on the jobs it runs.
        self.lease = Lease(store, import_jobs, import_jobs.c.finished.is_(None), lease_seconds)

    def save(self, doc: dict[str, Any], finished: bool) -> None:
        values = {
            "image_uuid": str(doc["params"].get("image_uuid", "")),
            "task": doc["task"],
            "execution": doc["execution"],
            "created_at": doc["created_at"],
            "finished": time.time() if finished else None,
            "doc": json.dumps(doc),
            **self.lease.held(),
        }
        with self.store.transaction() as c:
            done = c.execute(update(import_jobs).where(import_jobs.c.uuid == doc["uuid"]).values(**values))
            if done.rowcount == 0:
                c.execute(insert(import_jobs).values(uuid=doc["uuid"], **values))
            if finished:
                c.execute(delete(import_jobs).where(import_jobs.c.finished < self._cutoff()))

    def _cutoff(self) -> float:
        return time.time() - self.keep_seconds

    def _kept(self) -> ColumnElement[bool]:
        """Running, or finished less than ``keep_seconds`` ago (older rows go at the next save)."""
        return or_(import_jobs.c.finished.is_(None), import_jobs.c.finished >= self._cutoff())

    def get(self, uuid: str) -> dict[str, Any] | None:
        q = select(import_jobs.c.doc).where(import_jobs.c.uuid == uuid, self._kept())
        with self.store.engine.connect() as c:
            raw = c.execute(q).scalar()
        return json.loads(raw) if raw is not None else None

    def for_image(
        self, image_uuid: str, task: str | None = None, execution: str | None = None
    ) -> list[dict[str, Any]]:
        """The image's jobs, oldest first."""
        q = select(import_jobs.c.doc).where(import_jobs.c.image_uuid == image_uuid, self._kept())
        if task is not None:
            q = q.where(import_jobs.c.task == task)
        if execution is not None:
            q = q.where(import_jobs.c.execution == execution)
        with self.store.engine.connect() as c:
            rows = c.execute(q.order_by(import_jobs.c.created_at)).scalars().all()
        return [json.loads(r) for r in rows]

    def unfinished(self) -> list[dict[str, Any]]:
        """Running jobs whose process is gone (their lease ran out)."""
        q = select(import_jobs.c.doc).where(self.lease.unfinished, self.lease.expired())
        with self.store.engine.connect() as c:
            return [json.loads(r) for r in c.execute(q).scalars()]

    def close(self, doc: dict[str, Any]) -> bool:
        """Save the finished ``doc`` of a job another process left unfinished, if its lease (still)
        ran out; True for the one process that closed it."""
        return self.lease.claim(
            import_jobs.c.uuid == doc["uuid"],
            execution=doc["execution"],
            finished=time.time(),
            doc=json.dumps(doc),
        )
