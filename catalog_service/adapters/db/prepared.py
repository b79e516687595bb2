"""The catalog's hottest statements run straight on the DBAPI cursor (SQLite).

SQLAlchemy's execution path (compiled-cache lookup, parameter processing, result set-up, events)
costs several times what a primary-key read or a one-row INSERT costs SQLite itself, and every
GetImage and every write runs a handful of them. :func:`run` compiles such a statement once per
set of parameter names, exactly as SQLAlchemy would for that call, and runs the SQL text on the
connection's own DBAPI cursor, in the connection's transaction. It is used only for statements
whose columns need no conversion by the sqlite3 driver (text, integers, booleans stored as 0/1;
readers coerce with ``int()``/``bool()``). On PostgreSQL it is ``conn.execute``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]

_SQL: dict[tuple[ClauseElement, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}


def _compiled(conn: Connection, stmt: ClauseElement, keys: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    hit = _SQL.get((stmt, keys))
    if hit is None:
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(keys))
        hit = _SQL[(stmt, keys)] = (compiled.string, tuple(compiled.positiontup or ()))  # type: ignore[attr-defined]
    return hit


def run(conn: Connection, stmt: ClauseElement, params: Params) -> Any:
    """``conn.execute(stmt, params)`` (a list of parameter sets: executemany). On SQLite the answer
    is the DBAPI cursor: read it with ``fetchone()``/``fetchall()``/``rowcount`` only."""
    if conn.dialect.name != "sqlite":
        return conn.execute(stmt, params)  # type: ignore[call-overload]
    sets: Sequence[Mapping[str, Any]] = [params] if isinstance(params, Mapping) else params
    sql, order = _compiled(conn, stmt, tuple(sets[0]))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if isinstance(params, Mapping):
        cursor.execute(sql, tuple(params[k] for k in order))
    else:
        cursor.executemany(sql, [tuple(p[k] for k in order) for p in sets])
    return cursor


def first(result: Any) -> Any:
    """The first row of a :func:`run` read (a cursor or a SQLAlchemy result), which is then closed
    (an unfinished SQLite statement would hold its read snapshot)."""
    row = result.fetchone()
    result.close()
    return row
