"""The unit of work: the one place that opens transactions, retries lost races and signals changes.

Every write runs as ``uow.run(what, uuid, attempt)``: ``attempt`` gets an open write transaction,
reads what it needs through the repository, applies the rule and writes conditionally on the
revision it read (the repository appends the change-feed entry in the same transaction). A writer
that lost a race (:class:`ConcurrentUpdate`) is rolled back and run again on fresh data; after a
commit, followers of the change feed in this process are woken.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine

from catalog_service.adapters.db.engine import WRITE_OPTION
from catalog_service.adapters.db.repository import ConcurrentUpdate
from imgapi_common.errors import ImgapiError

#: How often a write is retried after losing an optimistic-concurrency race.
MAX_ATTEMPTS = 20

T = TypeVar("T")


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._changed = threading.Condition()

    def read(self) -> Connection:
        """A connection for reads: autocommit (no BEGIN/ROLLBACK round trips per request)."""
        if self._dialect == "sqlite":  # see make_engine: reads emit no BEGIN there
            return self.engine.connect()
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            yield conn
        self.notify()

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
