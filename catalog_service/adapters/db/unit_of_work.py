"""The unit of work: the one place that opens transactions, retries lost races and signals changes.

Every write runs as ``uow.run(what, uuid, attempt)``: ``attempt`` gets an open write transaction,
reads what it needs through the repository, applies the rule and writes conditionally on the
revision it read (the repository appends the change-feed entry in the same transaction). A writer
that lost a race (:class:`ConcurrentUpdate`) is rolled back and run again on fresh data; after a
commit, followers of the change feed in this process are woken.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, TypeVar

from sqlalchemy import Connection, Engine

from catalog_service.adapters.db.engine import WRITE_OPTION, stale_statistics
from catalog_service.adapters.db.repository import ConcurrentUpdate
from imgapi_common.errors import ImgapiError

#: How often a write is retried after losing an optimistic-concurrency race.
MAX_ATTEMPTS = 20

#: SQLite: how many threads running an event loop keep their two connections (reads, writes) open
#: between calls instead of taking them from the engine's pool for each call and giving them back.
#: Such a thread is the embedded stack's gateway calling the catalog in-process on its own thread
#: (catalog_service/api/local.py), long-lived and the busiest caller; the pool's checkout and
#: return cost ~12-18 us there, a third of a GetImage's catalog work. Other threads (the gRPC
#: server's) use the pool as before, which stays large enough for them.
HELD_THREADS = 2

T = TypeVar("T")


class _Held(threading.local):
    """A thread's connections kept open between calls (SQLite; see ``HELD_THREADS``). ``slot``:
    None until the thread first asks, then whether it got one."""

    slot: bool | None = None
    reader: Connection | None = None
    writer: Connection | None = None


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._changed = threading.Condition()
        self._held = _Held()
        self._held_threads = 0
        self._held_lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads: autocommit (no BEGIN/ROLLBACK round trips per request)."""
        if self._dialect != "sqlite":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield conn
            return
        # see make_engine: reads emit no BEGIN on SQLite
        if not self._holds():
            with self.engine.connect() as conn:
                yield conn
            return
        reader = self._kept("reader")
        try:
            yield reader
        finally:
            if reader.in_transaction():  # SQLAlchemy's own (autobegun); the driver has none open
                reader.rollback()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        if self._dialect == "sqlite" and self._holds():
            writer = self._kept("writer")
            with writer.begin():
                yield writer
        else:
            with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
                yield conn
        self.notify()

    def _kept(self, role: Literal["reader", "writer"]) -> Connection:
        """This thread's kept connection for ``role``, opened on first use; one whose planner
        statistics predate the last refresh is invalidated, so that its next statement runs on
        a new connection with the new statistics (engine.py, ``stale_statistics``)."""
        conn: Connection | None = getattr(self._held, role)
        if conn is None or conn.invalidated:
            conn = self.engine.connect()
            if role == "writer":
                conn = conn.execution_options(**{WRITE_OPTION: True})
            setattr(self._held, role, conn)
        elif stale_statistics(self.engine, conn):
            conn.invalidate()
        return conn

    def _holds(self) -> bool:
        """Whether this thread keeps its connections: the first ``HELD_THREADS`` threads to ask
        while running an event loop."""
        slot = self._held.slot
        if slot is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # not (yet) a loop's thread: ask again next time
                return False
            with self._held_lock:
                slot = self._held_threads < HELD_THREADS
                self._held_threads += slot
            self._held.slot = slot
        return slot

    def run(self, what: str, uuid: str, attempt: Callable[[Connection], T]) -> T:
        """Run ``attempt`` in a transaction, again on a lost race (``what``: e.g. "updating")."""
        for _ in range(MAX_ATTEMPTS):
            try:
                with self.transaction() as conn:
                    return attempt(conn)
            except ConcurrentUpdate:
                continue
        raise ImgapiError("InternalError", f"too much contention {what} image {uuid}")

    # --- change signal ----------------------------------------------------------------------

    def notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_for_change(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)
