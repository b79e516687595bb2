"""A cheap token naming the state of the catalog's data: equal tokens, equal data.

SQLite: the change feed's latest cursor. Every write appends to the feed in its own transaction and
SQLite runs one write transaction at a time, so cursors are assigned in commit order; reading the
maximum is one lookup at the end of the primary key.

PostgreSQL: the current snapshot (``pg_current_snapshot()``: the transactions visible to a statement
starting now). Feed cursors come from a sequence and are assigned when a row is inserted, not when
its transaction commits: a writer holding cursor 10 may commit after another one's 11, so "the
latest cursor is still 11" would not prove that nothing changed. The snapshot does: two equal
snapshots see exactly the same committed transactions. Read-only statements take no transaction id
and leave it unchanged; any write in the cluster changes it (a reader then merely misses its cache).
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select, text

from catalog_service.adapters.db.schema import changes

_PG_SNAPSHOT = text("SELECT pg_current_snapshot()::text")


def data_version(conn: Connection) -> str:
    if conn.dialect.name == "postgresql":
        return str(conn.execute(_PG_SNAPSHOT).scalar_one())
    return str(conn.execute(select(func.max(changes.c.cursor))).scalar() or 0)
