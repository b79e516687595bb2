"""The embedded SQLite catalog checkpoints its WAL on a thread of its own (catalog_service/adapters/db/wal.py),
not inside the commits of the thread that writes (the gateway's event loop in the embedded stack)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from catalog_service.adapters.db import wal
from catalog_service.adapters.db.engine import wal_checkpointer
from tests.catalog.conftest import SDC, manifest, running_catalog
from tests.catalog.grpc_support import list_uuids
from tests.replication.stacks import wait_for

PAGE = 4096


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]


def test_the_wal_is_checkpointed_and_started_over_by_a_thread_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 image writes append ~20 pages each (about 6,000 in all, fewer than the writers' own
    checkpoint backstop): the WAL file stays near the restart threshold only because the
    checkpointer copies it back and starts it over; every image is still there."""
    monkeypatch.setattr(wal, "EVERY_WRITES", 8)
    monkeypatch.setattr(wal, "RESTART_FRAMES", 300)
    db = tmp_path / "catalog.db"
    assert _checkpoint_threads() == []
    with running_catalog(f"sqlite:///{db}", "sqlite", mode="dc", admin_uuid=SDC) as cat:
        checkpoints = wal_checkpointer(cat.service.engine)
        assert checkpoints is not None
        with cat.service.engine.connect() as conn:  # the writers' own checkpoints: a backstop only
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == wal.BACKSTOP_PAGES
        created = [cat.create(manifest(owner=SDC))["uuid"] for _ in range(300)]
        assert len(_checkpoint_threads()) == 1
        assert checkpoints.runs >= 300 // 8 // 2
        assert checkpoints.restarts >= 1
        # Without the restarts the file would hold every page written (~24 MiB); with them, at
        # most the threshold plus what was written while a checkpoint ran.
        assert (tmp_path / "catalog.db-wal").stat().st_size < 4 * 300 * PAGE
        assert set(list_uuids(cat, state="all")) == set(created)
    assert _checkpoint_threads() == []  # stopped with the engine


def test_a_lone_write_is_checkpointed_soon_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wal, "IDLE_SECONDS", 0.05)
    db = tmp_path / "catalog.db"
    with running_catalog(f"sqlite:///{db}", "sqlite", mode="dc", admin_uuid=SDC) as cat:
        checkpoints = wal_checkpointer(cat.service.engine)
        assert checkpoints is not None
        before = checkpoints.runs
        cat.create(manifest(owner=SDC))
        wait_for("a checkpoint after the write", lambda: checkpoints.runs > before, timeout=10)
        runs = checkpoints.runs
        cat.service.engine.dispose()  # stops the thread; the next write starts another
        assert _checkpoint_threads() == []
        image = cat.create(manifest(owner=SDC))["uuid"]
        wait_for("a checkpoint by a new thread", lambda: checkpoints.runs > runs, timeout=10)
        assert len(_checkpoint_threads()) == 1
        assert image in list_uuids(cat, state="all")
