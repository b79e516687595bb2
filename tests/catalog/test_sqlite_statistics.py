"""The embedded SQLite catalog keeps planner statistics itself (catalog_service/adapters/db/statistics.py):
without them ``owner=X`` walks every active image instead of X's own index."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid as uuidlib
from pathlib import Path
from typing import Any

from catalog_service.adapters.db.statistics import FIRST_ANALYZE_AT
from catalog_service.domain.calls import Caller, View
from tests.catalog.conftest import SDC, VADER, manifest, running_catalog
from tests.catalog.grpc_support import list_uuids

_OWNER_SQL = (
    "SELECT uuid FROM images WHERE owner = ? AND valid = 1 AND activated = 1 AND disabled = 0 "
    "ORDER BY published_sort, uuid LIMIT 100"
)
_CALLER = Caller()
_VIEW = View(include_channels=True)


def _plan(db: Path, owner: str) -> str:
    with sqlite3.connect(db) as c:
        return " ".join(str(r[-1]) for r in c.execute(f"EXPLAIN QUERY PLAN {_OWNER_SQL}", (owner,)))


def test_statistics_appear_as_the_catalog_is_written(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    with running_catalog(f"sqlite:///{db}", "sqlite", mode="dc", admin_uuid=SDC) as cat:
        created = [cat.create(manifest(owner=VADER if i % 8 == 0 else SDC))["uuid"] for i in range(40)]
        with sqlite3.connect(db) as c:
            assert c.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() == (
                0,
            )
        created += [cat.create(manifest(owner=SDC))["uuid"] for _ in range(FIRST_ANALYZE_AT - 40)]
        with sqlite3.connect(db) as c:
            stats = {r[0] for r in c.execute("SELECT idx FROM sqlite_stat1 WHERE tbl = 'images'")}
        assert {"ix_images_owner", "ix_images_state_order"} <= stats, stats
        assert "ix_images_owner" in _plan(db, VADER)
        # The answers are the same as before: statistics choose plans, not results.
        assert set(list_uuids(cat, owner=VADER, state="all")) == set(created[0:40:8])


def test_connections_kept_open_plan_with_the_latest_statistics(tmp_path: Path) -> None:
    """SQLite reads planner statistics when a connection opens; another connection's ANALYZE does
    not refresh them. The event loop's thread keeps its connections open between calls, and the
    pool keeps its own: one that opened before the last refresh is replaced before its next use.
    Here the first statistics see one owner (X's own index then looks useless), the later ones
    many; the loop thread's reads, and a pooled connection's, then plan ``owner=X`` on X's index."""
    db = tmp_path / "catalog.db"
    with running_catalog(f"sqlite:///{db}", "sqlite", mode="dc", admin_uuid=SDC) as cat:
        uow = cat.service.uow
        owner_sql = _OWNER_SQL

        async def on_the_loop(n: int) -> str:
            # written and read on this thread: its kept connections (unit_of_work.HELD_THREADS)
            for _ in range(n):
                cat.service.create(_CALLER, _VIEW, json.dumps(manifest(owner=SDC)))
            with uow.read() as conn:
                return " ".join(
                    str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {owner_sql}", (VADER,))
                )

        def plan(conn: Any) -> str:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {owner_sql}", (VADER,))
            return " ".join(str(r[-1]) for r in rows)

        first = asyncio.run(on_the_loop(FIRST_ANALYZE_AT))  # statistics of one owner
        assert "ix_images_owner" not in first, first
        engine = cat.service.engine
        idle_since = engine.connect()  # a pooled connection, unused while the statistics change
        assert "ix_images_owner" not in plan(idle_since)
        for i in range(3 * FIRST_ANALYZE_AT):  # through the gRPC server's threads: many owners
            cat.create(manifest(owner=VADER if i % 16 == 0 else str(uuidlib.uuid4())))
        idle_since.close()
        assert "ix_images_owner" in asyncio.run(on_the_loop(0))
        pool: Any = engine.pool
        pooled = [engine.connect() for _ in range(pool.checkedin())]  # every idle one, that one too
        try:
            assert pooled and all("ix_images_owner" in plan(c) for c in pooled)
        finally:
            for c in pooled:
                c.close()
