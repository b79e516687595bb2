"""Engine creation and migrations for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

from catalog_service.adapters.db.statistics import ANALYZE_STATEMENTS, AnalyzeSchedule
from catalog_service.adapters.db.wal import BACKSTOP_PAGES, WalCheckpointer

if TYPE_CHECKING:
    from alembic.config import Config

#: Execution option marking a connection that will write (see the SQLite ``begin`` hook).
WRITE_OPTION = "imgapi_write"

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: Connection-record keys: the statistics refreshes a connection has loaded, and whether its
#: transaction refreshed them.
_STATS_SEEN = "imgapi_stats_seen"
_ANALYZED = "imgapi_analyzed"
#: SQLite engines' statistics schedules (:func:`stale_statistics`).
_SCHEDULES: weakref.WeakKeyDictionary[Engine, AnalyzeSchedule] = weakref.WeakKeyDictionary()
_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()


def stale_statistics(engine: Engine, conn: Any) -> bool:
    """Whether SQLAlchemy connection ``conn`` (SQLite) planned with statistics older than the last
    committed refresh: replace it (``conn.invalidate()``) before using it again."""
    schedule = _SCHEDULES.get(engine)
    return schedule is not None and _behind(conn.info, schedule)


def _behind(info: dict[Any, Any], schedule: AnalyzeSchedule) -> bool:
    """Whether the connection (or its record) with this ``info`` opened before the last refresh."""
    return bool(info.get(_STATS_SEEN, schedule.runs) != schedule.runs)


def wal_checkpointer(engine: Engine) -> WalCheckpointer | None:
    """The WAL checkpointer of a SQLite file database's engine (db/wal.py)."""
    return _CHECKPOINTERS.get(engine)


def _checkpointer(engine: Engine, database: str | None) -> WalCheckpointer | None:
    """A checkpointer for a SQLite file database (none in memory), stopped when the engine is
    disposed or collected."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    checkpoints = _CHECKPOINTERS[engine] = WalCheckpointer(database)
    event.listen(engine, "engine_disposed", lambda _engine: checkpoints.close())
    weakref.finalize(engine, checkpoints.close)
    return checkpoints


def make_engine(url: str, pool_size: int = 16, sqlite_mmap_bytes: int = 0) -> Engine:
    """An engine for ``url``; ``sqlite_mmap_bytes`` is SQLite's ``mmap_size`` (the catalog's
    setting of that name)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        schedule = AnalyzeSchedule()
        _SCHEDULES[engine] = schedule
        checkpoints = _checkpointer(engine, u.database)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, record: Any) -> None:
            record.info[_STATS_SEEN] = schedule.runs  # read with the schema, when first used
            # WAL: readers never block the writer; busy_timeout: writers queue instead of failing.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            if checkpoints is not None:  # see db/wal.py: checkpoints run on their own thread
                cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA mmap_size={int(sqlite_mmap_bytes)}")
            cur.close()

        @event.listens_for(engine, "checkout")
        def _fresh_statistics(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            # A pooled connection opened before the last refresh is replaced (the pool retries
            # the checkout with a new one).
            if _behind(record.info, schedule):
                raise exc.DisconnectionError("planner statistics were refreshed since this connection opened")

        @event.listens_for(engine, "commit")
        def _analyzed(conn: Any) -> None:
            if conn.info.pop(_ANALYZED, False):
                schedule.committed()
                conn.info[_STATS_SEEN] = schedule.runs  # the ANALYZE reloaded its own

        @event.listens_for(engine, "rollback")
        def _not_analyzed(conn: Any) -> None:
            conn.info.pop(_ANALYZED, None)

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Write transactions take the write lock up front so read-modify-write cycles
            # serialize cleanly instead of failing to upgrade a shared lock. Reads run in
            # autocommit mode (each statement is consistent on its own; no BEGIN/ROLLBACK trips).
            if conn.get_execution_options().get(WRITE_OPTION):
                # On the driver's connection: SQLAlchemy's execution path would cost more than
                # the statement (pysqlite's own BEGIN is a no-op; the driver runs in autocommit).
                conn.connection.driver_connection.execute("BEGIN IMMEDIATE")
                if checkpoints is not None:
                    checkpoints.wrote()
                if schedule.due():  # planner statistics as the catalog grows (db/statistics.py)
                    for statement in ANALYZE_STATEMENTS:
                        conn.exec_driver_sql(statement)
                    conn.info[_ANALYZED] = True

        return engine
    # No pre-ping: it costs a round trip on every checkout (as much as a GetImage itself). A
    # connection broken by a database restart fails one request, which invalidates the pool.
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)

    @event.listens_for(engine, "connect")
    def _session(dbapi_conn: Any, _record: Any) -> None:
        # No parallel plans: the catalog's queries are short pages (LIMIT <= 1000) walked in index
        # order, and starting parallel workers alone took ~9 ms of a 10-20 ms listing at 100k
        # images. A SET, not a startup option, so that poolers which refuse options still connect.
        with dbapi_conn.cursor() as cur:
            cur.execute("SET max_parallel_workers_per_gather = 0")
        dbapi_conn.commit()

    return engine


def alembic_config(url: str) -> Config:
    # Alembic (~10 MiB resident) is loaded by the processes that migrate, not by every catalog:
    # `imgapi serve` migrates in a short-lived child (imgapi_cli/serve.py).
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (idempotent)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
