"""Several replication processes share one database: an import job left running by a process that
is gone is closed as canceled by exactly one of the others, and a job a live process runs is left
alone. Two registries (each with its own engine and owner id, as two processes have) race, on
SQLite and on PostgreSQL; and a table created before the lease columns existed gets them."""

from __future__ import annotations

import dataclasses
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Float, MetaData, String, Table, Text, create_engine, insert

from replication.adapters.import_records import ImportRecords
from replication.adapters.store import KEEP_SECONDS, Store
from replication.handlers.imports.registry import Job, JobRegistry
from tests.components import Shape
from tests.races import race


@pytest.fixture()
def db_url(shape: Shape, tmp_path: Path) -> Iterator[str]:
    url, drop = shape.database()
    try:
        yield url or f"sqlite:///{tmp_path}/replication.db"
    finally:
        drop()


def running(task: str = "import-remote-image") -> dict[str, object]:
    job = Job(uuid=str(uuidlib.uuid4()), task=task, params={"task": task, "image_uuid": str(uuidlib.uuid4())})
    job.execution = "running"
    return job.as_json()


def test_left_jobs_are_closed_once_and_live_ones_not_at_all(db_url: str) -> None:
    stores = [Store(db_url) for _ in range(4)]
    try:
        left = ImportRecords(stores[0], KEEP_SECONDS)
        left.lease = dataclasses.replace(left.lease, clock=lambda: time.time() - 3600)  # gone an hour ago
        docs = [running() for _ in range(10)]
        for doc in docs:
            left.save(doc, finished=False)
        live = ImportRecords(stores[1], KEEP_SECONDS)
        mine = running()
        live.save(mine, finished=False)
        b, c = (JobRegistry(ImportRecords(s, KEEP_SECONDS)) for s in stores[2:])
        closed = race(b.close_unfinished, c.close_unfinished)
        assert sum(closed) == len(docs)  # each left job closed by exactly one of the two
        for doc in docs:
            got = live.get(str(doc["uuid"]))
            assert got is not None and got["execution"] == "canceled"
            assert [e["name"] for e in got["chain_results"]] == ["cancel"]
        assert live.get(str(mine["uuid"]))["execution"] == "running"  # type: ignore[index]
        assert b.close_unfinished() == 0 and live.lease.renew() == 1
    finally:
        for s in stores:
            s.close()


def test_a_table_made_before_the_leases_gets_them(db_url: str) -> None:
    old = Table(
        "import_jobs",
        MetaData(),
        Column("uuid", String(36), primary_key=True),
        Column("image_uuid", String(36), nullable=False),
        Column("task", String(64), nullable=False),
        Column("execution", String(16), nullable=False),
        Column("created_at", String(32), nullable=False),
        Column("finished", Float, nullable=True),
        Column("doc", Text, nullable=False),
    )
    engine = create_engine(db_url)
    doc = running()
    old.create(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(old).values(
                uuid=doc["uuid"],
                image_uuid="",
                task=doc["task"],
                execution="running",
                created_at="",
                doc="{}",
            )
        )
    engine.dispose()
    store = Store(db_url)
    try:
        records = ImportRecords(store, KEEP_SECONDS)
        ImportRecords(store, KEEP_SECONDS)  # a second start finds the columns there
        assert [d for d in records.unfinished()] == [{}]  # a row from before the leases: nobody holds it
        assert records.close({**doc, "execution": "canceled"})
        assert records.get(str(doc["uuid"]))["execution"] == "canceled"  # type: ignore[index]
    finally:
        store.close()
