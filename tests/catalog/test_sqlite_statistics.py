"""The embedded SQLite catalog keeps planner statistics itself (catalog_service/adapters/db/statistics.py):
without them ``owner=X`` walks every active image instead of X's own index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from catalog_service.adapters.db.statistics import FIRST_ANALYZE_AT
from tests.catalog.conftest import SDC, VADER, manifest, running_catalog
from tests.catalog.grpc_support import list_uuids


def _plan(db: Path, owner: str) -> str:
    sql = (
        "SELECT uuid FROM images WHERE owner = ? AND valid = 1 AND activated = 1 AND disabled = 0 "
        "ORDER BY published_sort, uuid LIMIT 100"
    )
    with sqlite3.connect(db) as c:
        return " ".join(str(r[-1]) for r in c.execute(f"EXPLAIN QUERY PLAN {sql}", (owner,)))


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
