"""How the catalog's database sessions are set up (catalog_service/adapters/db/engine.py): SQLite
reads through a memory map when ``sqlite_mmap_bytes`` asks for one; PostgreSQL plans no parallel
workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog_service.adapters.db.engine import make_engine
from tests.catalog.conftest import SDC, caller, database, manifest, running_catalog


def _mapped(db: Path) -> bool:
    """Whether this process (the catalog runs in it) has the database file memory-mapped."""
    return any(line.rstrip().endswith(str(db)) for line in Path("/proc/self/maps").read_text().splitlines())


@pytest.mark.parametrize("mmap_bytes", [64 * 1024 * 1024, 0])
def test_listing_reads_through_the_memory_map(tmp_path: Path, mmap_bytes: int) -> None:
    db = tmp_path / "catalog.db"
    with running_catalog(
        f"sqlite:///{db}",
        "sqlite",
        mode="dc",
        admin_uuid=SDC,
        sqlite_mmap_bytes=mmap_bytes,
        list_cache_bytes=0,
    ) as cat:
        made = {cat.create(manifest(name=f"img-{i}"))["uuid"] for i in range(3)}
        listed = {i.uuid for i in cat.call("ListImages", caller=caller(), state="all").images}
        assert listed == made
        assert _mapped(db) is (mmap_bytes > 0)


def test_postgresql_sessions_plan_without_parallel_workers(tmp_path: Path) -> None:
    """The catalog's PostgreSQL sessions make no parallel plans (their startup cost more than a
    whole page of a listing); SQLite has no such setting."""
    with database("postgres", tmp_path) as url:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar_one() == "0"
        finally:
            engine.dispose()
