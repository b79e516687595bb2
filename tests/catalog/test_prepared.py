"""catalog_service.adapters.db.prepared: a statement run on the DBAPI cursor (SQLite) does what
``conn.execute`` does, inside the connection's transaction; on PostgreSQL it is ``conn.execute``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)

from catalog_service.adapters.db.engine import make_engine
from catalog_service.adapters.db.prepared import first, run
from tests.catalog.conftest import BACKENDS, database

meta = MetaData()
things = Table(
    "things", meta, Column("id", Text, primary_key=True), Column("flag", Boolean), Column("note", Text)
)
INSERT = insert(things)
GET = select(things.c.id, things.c.flag, things.c.note).where(things.c.id == bindparam("id"))
SET_NOTE = update(things).where(things.c.id == bindparam("b_id"))


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with database(request.param, tmp_path) as url:
        eng = make_engine(url)
        meta.create_all(eng)
        try:
            yield eng
        finally:
            meta.drop_all(eng)
            eng.dispose()


def _write(engine: Engine) -> Connection:
    return engine.connect().execution_options(imgapi_write=True)


def test_reads_and_writes_match_conn_execute(engine: Engine) -> None:
    with _write(engine) as conn, conn.begin():
        run(
            conn,
            INSERT,
            [{"id": "a", "flag": True, "note": "é'\"ü"}, {"id": "b", "flag": False, "note": None}],
        )
        assert run(conn, SET_NOTE, {"b_id": "b", "note": "set"}).rowcount == 1
        assert run(conn, SET_NOTE, {"b_id": "zz", "note": "x"}).rowcount == 0
    with engine.connect() as conn:
        rows = []
        for key in ("a", "b"):
            raw = first(run(conn, GET, {"id": key}))
            ours = conn.execute(GET, {"id": key}).first()
            assert ours is not None and raw is not None
            assert (raw[0], bool(raw[1]), raw[2]) == tuple(ours)
            rows.append(tuple(ours))
        assert first(run(conn, GET, {"id": "missing"})) is None
    assert rows == [("a", True, "é'\"ü"), ("b", False, "set")]


def test_a_rolled_back_transaction_leaves_nothing(engine: Engine) -> None:
    with pytest.raises(RuntimeError), _write(engine) as conn, conn.begin():
        run(conn, INSERT, {"id": "c", "flag": True, "note": "gone"})
        assert first(run(conn, GET, {"id": "c"})) is not None
        raise RuntimeError("abort")
    with engine.connect() as conn:
        assert first(run(conn, GET, {"id": "c"})) is None


def test_sqlite_runs_on_the_driver_cursor(engine: Engine) -> None:
    with engine.connect() as conn:
        result = run(conn, GET, {"id": "a"})
        assert (type(result).__module__ == "sqlite3") is (engine.dialect.name == "sqlite")
        result.close()
