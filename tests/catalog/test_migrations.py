"""Alembic migrations on both engines: empty -> head -> base -> head, and head matches the schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from catalog_service.adapters.db.engine import alembic_config, make_engine, migrate
from catalog_service.adapters.db.schema import metadata
from tests.catalog.conftest import SDC, V2, VADER, caller, database, manifest, running_catalog


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with database(request.param, tmp_path) as url:
        yield request.param, url


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def schema_diffs(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_db: tuple[str, str]) -> None:
    backend, url = empty_db
    expected = set(metadata.tables)
    assert tables(url) == set()
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    assert tables(url) - {"alembic_version"} == expected
    assert schema_diffs(url) == [], "head migration differs from catalog_service/adapters/db/schema.py"
    command.downgrade(cfg, "base")
    assert tables(url) - {"alembic_version"} == set()
    command.upgrade(cfg, "head")
    assert tables(url) - {"alembic_version"} == expected
    # idempotent through the service's own entry point
    engine = make_engine(url)
    try:
        migrate(engine)
        migrate(engine)
    finally:
        engine.dispose()
    assert schema_diffs(url) == []
    # a server starts on the migrated database and works
    with running_catalog(url, backend, mode="dc", admin_uuid=SDC, auto_migrate=False) as cat:
        img = cat.create(manifest())
        r = cat.call("GetImage", caller=caller(), view=V2, uuid=img["uuid"])
        assert json.loads(r.image.view_json) == img


def test_server_migrates_empty_database(empty_db: tuple[str, str]) -> None:
    backend, url = empty_db
    with running_catalog(url, backend, mode="dc", admin_uuid=SDC) as cat:
        assert cat.create(manifest())["state"] == "unactivated"
    assert tables(url) - {"alembic_version"} == set(metadata.tables)
    # a restart on the same database keeps the data and does not re-run the migration
    with running_catalog(url, backend, mode="dc", admin_uuid=SDC) as cat:
        r = cat.call("ListImages", caller=caller(), state="all")
        assert len(r.images) == 1


#: Tags of the images the upgrade test makes: none, ordinary, odd characters (quotes, the pair
#: separator, NUL, unicode, a number), and tags too long to carry in the listing indexes.
_TAGS: list[dict[str, object] | None] = [
    None,
    {"role": "db", "gen": 3},
    {"role": "web", 'q"u\\o\x1ft\x00e': '\u00e9\u2603 \x1f["role", "db"]\x1f'},
    {"role": "db", **{f"key-{i:02d}-{'k' * 20}": "v" for i in range(20)}},
]


def _tag_pairs(url: str) -> dict[str, str | None]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.exec_driver_sql("SELECT uuid, tag_pairs FROM images").all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def _listings(cat: Any) -> list[list[str]]:
    """The uuids of the listings the upgraded indexes serve, tag filters included."""
    asked: list[dict[str, Any]] = [
        {},
        {"owner": VADER},
        {"tags": {"role": "db"}},
        {"tags": {"role": "web"}},
        {"tags": {"gen": "3"}},
        {"tags": {'q"u\\o\x1ft\x00e': '\u00e9\u2603 \x1f["role", "db"]\x1f'}},
        {"tags": {f"key-07-{'k' * 20}": "v"}},
    ]
    return [[i.uuid for i in cat.call("ListImages", caller=caller(), state="all", **q).images] for q in asked]


def test_listing_index_migrations_upgrade_a_catalog_with_images(empty_db: tuple[str, str]) -> None:
    """0003 and 0004 rebuild the listing indexes of a catalog that has images: down to 0002 and up
    again gives the same listings (tag filters included), the same ``tag_pairs`` as the writes
    stored, and planner statistics for the new indexes (SQLite would otherwise walk a whole index
    for ``owner=X``)."""
    backend, url = empty_db
    cfg = alembic_config(url)
    with running_catalog(url, backend, mode="dc", admin_uuid=SDC) as cat:
        made = [
            cat.create(manifest(name=f"img-{i}", **({"tags": t} if t else {})))["uuid"]
            for i, t in enumerate(_TAGS)
        ]
        before = _listings(cat)
    assert sorted(before[0]) == sorted(made)
    assert [len(uuids) for uuids in before[2:]] == [2, 1, 1, 1, 1]
    stored = _tag_pairs(url)
    assert stored[made[0]] == "" and stored[made[3]] is None
    command.downgrade(cfg, "0002")
    command.upgrade(cfg, "head")
    assert schema_diffs(url) == []
    assert _tag_pairs(url) == stored
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if backend == "sqlite":
                analyzed = {
                    r[0] for r in conn.exec_driver_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'images'")
                }
                assert {"ix_images_owner", "ix_images_order", "ix_images_state_order"} <= analyzed
            else:
                last = conn.exec_driver_sql(
                    "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'images'"
                ).scalar_one()
                assert last is not None
    finally:
        engine.dispose()
    with running_catalog(url, backend, mode="dc", admin_uuid=SDC, auto_migrate=False) as cat:
        assert _listings(cat) == before
