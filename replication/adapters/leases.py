"""Which replication process runs an unfinished record: an owner and a lease, claimed atomically.

Several replication processes may share one database. A record a process is working on (a Docker
import being pulled, an import job running) carries that process's ``owner`` id and a
``lease_until`` (epoch seconds) the process pushes forward while it works (:meth:`Lease.renew`,
every third of the lease). A record whose lease ran out belongs to a process that is gone; another
process takes it over with one conditional ``UPDATE`` (:meth:`Lease.claim`): of several processes
trying at once, exactly one sees its row updated. Rows written before the lease existed (no
``lease_until``) count as expired.

The two columns are added to a table created before they existed (:func:`add_lease_columns`): the
replication database has no migration tool, only ``create_all``, which creates missing tables but
never alters one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, ColumnElement, Engine, Float, String, Table, inspect, or_, text, update

from replication.adapters.store import Store

log = logging.getLogger(__name__)

#: How long a record stays its owner's without being renewed (seconds).
DEFAULT_LEASE_SECONDS = 30.0


def lease_columns() -> list[Column[Any]]:
    """The owner and lease columns of a table whose rows are run by one process at a time."""
    return [Column("owner", String(36), nullable=True), Column("lease_until", Float, nullable=True)]


def add_lease_columns(engine: Engine, table: Table) -> None:
    """Add ``owner`` and ``lease_until`` to ``table`` when it was created without them."""
    present = {c["name"] for c in inspect(engine).get_columns(table.name)}
    for name in [c for c in ("owner", "lease_until") if c not in present]:
        kind = table.c[name].type.compile(dialect=engine.dialect)
        # Two processes starting together may both see the column missing: the second one's ALTER
        # fails and the column exists, which is what was wanted.
        try:
            with engine.begin() as conn:
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{name}" {kind}'))
        except Exception:
            if name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                raise


@dataclass(frozen=True)
class Lease:
    """This process's hold on the rows of ``table`` that ``unfinished`` selects."""

    store: Store
    table: Table
    #: The condition of a row still being worked on (its state), besides its lease.
    unfinished: ColumnElement[bool]
    seconds: float = DEFAULT_LEASE_SECONDS
    owner: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    clock: Callable[[], float] = time.time

    def held(self) -> dict[str, Any]:
        """The column values of a row this process starts working on."""
        return {"owner": self.owner, "lease_until": self.clock() + self.seconds}

    def expired(self) -> ColumnElement[bool]:
        c = self.table.c
        return or_(c.lease_until.is_(None), c.lease_until < self.clock())

    def claim(self, key: ColumnElement[bool], **values: Any) -> bool:
        """Take over the unfinished row ``key`` if its lease ran out (setting ``values`` too); True
        for the one process whose update found it so."""
        q = update(self.table).where(key, self.unfinished, self.expired()).values(**self.held(), **values)
        with self.store.transaction() as c:
            return c.execute(q).rowcount == 1

    def renew(self) -> int:
        """Push forward the lease of every unfinished row this process holds."""
        c = self.table.c
        q = update(self.table).where(c.owner == self.owner, self.unfinished)
        with self.store.transaction() as conn:
            return int(conn.execute(q.values(lease_until=self.clock() + self.seconds)).rowcount)


class LeaseKeeper:
    """A thread that runs ``ticks`` (renewals, take-overs) every third of the lease until stopped."""

    def __init__(self, seconds: float, ticks: Sequence[Callable[[], object]], name: str) -> None:
        self.interval = seconds / 3
        self.ticks = list(ticks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for tick in self.ticks:
                try:
                    tick()
                except Exception:  # the database may be briefly away: the next tick tries again
                    log.exception("lease keeping failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
