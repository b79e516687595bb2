"""Reading and writing image records.

The stored record (a JSON object) is the source of truth; every write also refreshes the indexed
columns and side tables derived from it, in the same transaction, together with a change-feed
entry. Updates are conditional on the revision that was read (optimistic concurrency): a writer
that lost a race gets :class:`ConcurrentUpdate` and retries on fresh data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from catalog_service.adapters.db.listing import ListQuery, build_list_query, with_driver
from catalog_service.adapters.db.prepared import first, run
from catalog_service.adapters.db.rows import (
    SIDE_TABLES,
    Views,
    change_row,
    doc_row,
    indexed_columns,
    load_record,
    side_rows,
)
from catalog_service.adapters.db.schema import changes, image_blobs, image_channels, image_docs, images, meta
from catalog_service.domain.clock import now_timestamp
from catalog_service.domain.config import DomainConfig
from imgapi_common.jsvalues import is_uuid


class ConcurrentUpdate(Exception):
    """The record changed since it was read; re-read and retry."""


def _row_columns(include_channels: bool, full: bool) -> tuple[Any, ...]:
    c, d = images.c, image_docs.c
    view_col, etag_col = (d.view_v2, d.etag_v2) if include_channels else (d.view_v1, d.etag_v1)
    columns = (c.uuid, c.revision, view_col.label("view"), etag_col.label("etag"))
    return (*columns, d.record) if full else columns


#: The columns of listing rows and of listing pages, built once: they are part of the cached
#: statements' keys (catalog_service/adapters/db/listing.py).
_ROW_COLUMNS = {(ch, full): _row_columns(ch, full) for ch in (False, True) for full in (False, True)}
_VIEW_COLUMNS = {False: (image_docs.c.view_v1,), True: (image_docs.c.view_v2,)}


def _page_statement(
    conn: Connection, q: ListQuery, dialect: str, columns: tuple[Any, ...]
) -> tuple[Select[Any], dict[str, Any]] | None:
    """The statement of one listing page and its parameters (None: nothing can match), driven by
    a rare tag where that is cheaper."""
    return build_list_query(with_driver(conn, q, dialect), dialect, columns)


@dataclass(frozen=True)
class Change:
    """One change-feed entry: the record after the change (None once deleted)."""

    cursor: int
    image_uuid: str
    kind: str
    changed_at: str
    record: dict[str, Any] | None


@dataclass(frozen=True)
class StoredImage:
    record: dict[str, Any]
    revision: int
    valid: bool
    #: Pre-rendered REST views: (view_v1, etag_v1, view_v2, etag_v2).
    views: Views = ("", "", "", "")


class ImageRepository:
    """All SQL of the catalog. Methods take an open connection (the caller's transaction);
    ``cfg`` decides how the stored REST views of a record are rendered."""

    def __init__(self, cfg: DomainConfig) -> None:
        self._cfg = cfg

    # --- reads ------------------------------------------------------------------------------

    # Built once: building and cache-keying a statement costs more than running it.
    _GET = (
        select(
            image_docs.c.record,
            images.c.revision,
            images.c.valid,
            image_docs.c.view_v1,
            image_docs.c.etag_v1,
            image_docs.c.view_v2,
            image_docs.c.etag_v2,
        )
        .select_from(images.join(image_docs, image_docs.c.uuid == images.c.uuid))
        .where(images.c.uuid == bindparam("uuid"))
    )
    _EXISTS = select(images.c.uuid).where(images.c.uuid == bindparam("uuid"))
    _LOCK = {
        shared: select(images.c.uuid).where(images.c.uuid == bindparam("uuid")).with_for_update(read=shared)
        for shared in (False, True)
    }
    _USED_BLOBS = select(image_blobs.c.blob_id).where(
        image_blobs.c.blob_id.in_(bindparam("ids", expanding=True))
    )
    # The writes too: an INSERT or UPDATE without values() takes its columns from the parameters of
    # each call (the ``b_`` parameters are the WHERE clause's).
    _INSERT = {t: insert(t) for t in (images, image_docs, changes, *SIDE_TABLES)}
    _UPDATE_IMAGE = update(images).where(
        images.c.uuid == bindparam("b_uuid"), images.c.revision == bindparam("b_revision")
    )
    _UPDATE_DOC = update(image_docs).where(image_docs.c.uuid == bindparam("b_uuid"))
    _DELETE_SIDE = {t: delete(t).where(t.c.image_uuid == bindparam("b_uuid")) for t in SIDE_TABLES}

    # Every lookup by id checks the id first: no stored image has another id (records are
    # validated), and PostgreSQL text cannot even hold some strings a client may send.

    def get(self, conn: Connection, uuid: Any) -> StoredImage | None:
        if not is_uuid(uuid):
            return None
        row = first(run(conn, self._GET, {"uuid": uuid}))
        if row is None:
            return None
        record, revision, valid, view_v1, etag_v1, view_v2, etag_v2 = row
        return StoredImage(
            load_record(record), int(revision), bool(valid), (view_v1, etag_v1, view_v2, etag_v2)
        )

    def exists(self, conn: Connection, uuid: Any) -> bool:
        return is_uuid(uuid) and first(run(conn, self._EXISTS, {"uuid": uuid})) is not None

    def dependents(self, conn: Connection, uuid: str, channel: str | None) -> list[str]:
        q = select(images.c.uuid).where(images.c.origin == uuid)
        if channel is not None:
            q = q.where(
                images.c.uuid.in_(
                    select(image_channels.c.image_uuid).where(image_channels.c.channel == channel)
                )
            )
        deps = [r.uuid for r in conn.execute(q.order_by(images.c.uuid))]
        if len(deps) < 2:
            return deps
        # In creation order, as the reference lists them (its store returns them as added): the
        # latest "create" change of each (an image re-created under the same uuid counts anew).
        created = select(changes.c.image_uuid, func.max(changes.c.cursor).label("at")).where(
            changes.c.image_uuid.in_(deps), changes.c.kind == "create"
        )
        at = {r.image_uuid: r.at for r in conn.execute(created.group_by(changes.c.image_uuid))}
        return sorted(deps, key=lambda u: (at.get(u) is None, at.get(u) or 0, u))

    def unreferenced(self, conn: Connection, blob_ids: Iterable[str]) -> list[str]:
        ids = sorted(set(blob_ids))
        if not ids:
            return []
        used = {r.blob_id for r in conn.execute(self._USED_BLOBS, {"ids": ids})}
        return [b for b in ids if b not in used]

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(images)).scalar_one())

    def lock(self, conn: Connection, uuid: Any, *, shared: bool) -> bool:
        """Lock an image row until the end of the transaction (PostgreSQL; SQLite write
        transactions are serialized anyway); False when it does not exist."""
        if not is_uuid(uuid):
            return False
        return first(run(conn, self._LOCK[shared], {"uuid": uuid})) is not None

    def all_records(self, conn: Connection) -> list[tuple[str, dict[str, Any], bool]]:
        """Every stored record: (uuid, record, valid)."""
        q = select(images.c.uuid, image_docs.c.record, images.c.valid).join(
            image_docs, image_docs.c.uuid == images.c.uuid
        )
        return [(row.uuid, load_record(row.record), bool(row.valid)) for row in conn.execute(q).all()]

    def published_sort_of(self, conn: Connection, uuid: str) -> str | None:
        """The listing sort key of an image (a listing marker), None when it does not exist."""
        row = conn.execute(select(images.c.published_sort).where(images.c.uuid == uuid)).first()
        return None if row is None else str(row.published_sort)

    def list_rows(
        self, conn: Connection, q: ListQuery, dialect: str, *, include_channels: bool, full: bool
    ) -> Sequence[Row[Any]]:
        """One listing page: rows of ``uuid``, ``revision``, the stored ``view`` and ``etag`` for
        the API version, and (``full``) the ``record``."""
        built = _page_statement(conn, q, dialect, _ROW_COLUMNS[include_channels, full])
        return [] if built is None else conn.execute(*built).all()

    def list_views(
        self, conn: Connection, q: ListQuery, dialect: str, *, include_channels: bool
    ) -> list[str]:
        """One listing page as the stored view texts for the API version, in order."""
        built = _page_statement(conn, q, dialect, _VIEW_COLUMNS[include_channels])
        return [] if built is None else list(conn.execute(*built).scalars().all())

    def expired_placeholders(self, conn: Connection, now_text: str) -> list[tuple[str, int, dict[str, Any]]]:
        """``creating``/``failed`` placeholders whose ``expires_at`` is not after ``now_text``:
        (uuid, revision, record)."""
        rows = conn.execute(
            select(images.c.uuid, images.c.revision, image_docs.c.record, images.c.expires_at)
            .join(image_docs, image_docs.c.uuid == images.c.uuid)
            .where(images.c.state.in_(("creating", "failed")), images.c.expires_at.is_not(None))
        ).all()
        return [
            (r.uuid, int(r.revision), load_record(r.record))
            for r in rows
            if str(r.expires_at)[:19] <= now_text
        ]

    # --- change feed ------------------------------------------------------------------------

    def changes_after(self, conn: Connection, cursor: int, limit: int) -> list[Change]:
        rows = conn.execute(
            select(changes).where(changes.c.cursor > cursor).order_by(changes.c.cursor).limit(limit)
        ).all()
        return [
            Change(
                int(r.cursor),
                r.image_uuid,
                r.kind,
                r.changed_at,
                None if r.record is None else load_record(r.record),
            )
            for r in rows
        ]

    def changes_head(self, conn: Connection) -> int:
        """The newest cursor of the feed (0 when empty)."""
        return int(conn.execute(select(func.max(changes.c.cursor))).scalar() or 0)

    # --- writes -----------------------------------------------------------------------------

    def insert(
        self,
        conn: Connection,
        rec: Mapping[str, Any],
        valid: bool,
        kind: str = "create",
        views: Views | None = None,
    ) -> int:
        """Store a new image; ``views``: its :func:`stored_views` when the caller made them."""
        uuid = rec["uuid"]
        run(conn, self._INSERT[images], {"uuid": uuid, "revision": 1, **indexed_columns(rec, valid)})
        doc = doc_row(rec, self._cfg, views)
        run(conn, self._INSERT[image_docs], {"uuid": uuid, **doc})
        self._sync_side_tables(conn, uuid, rec, fresh=True)
        self.append_change(conn, uuid, kind, rec, doc["record"])
        return 1

    def insert_many(self, conn: Connection, recs: Sequence[tuple[Mapping[str, Any], bool]]) -> None:
        """Bulk insert (imports, seeding, benchmarks): one statement per table."""
        if not recs:
            return
        conn.execute(
            self._INSERT[images],
            [{"uuid": r["uuid"], "revision": 1, **indexed_columns(r, v)} for r, v in recs],
        )
        conn.execute(
            self._INSERT[image_docs], [{"uuid": r["uuid"], **doc_row(r, self._cfg)} for r, _ in recs]
        )
        rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in SIDE_TABLES}
        for rec, _ in recs:
            for table, table_rows in side_rows(rec["uuid"], rec).items():
                rows[table] += table_rows
        for table, table_rows in rows.items():
            self._insert_rows(conn, table, table_rows)
        now = now_timestamp()
        conn.execute(self._INSERT[changes], [change_row(r["uuid"], "create", r, now) for r, _ in recs])

    def update(
        self,
        conn: Connection,
        rec: Mapping[str, Any],
        revision: int,
        valid: bool,
        kind: str,
        previous: Mapping[str, Any] | None = None,
        views: Views | None = None,
    ) -> int:
        """Replace the record if it is still at ``revision``; returns the new revision. With the
        ``previous`` record (the one at ``revision``), only side tables whose rows differ are
        rewritten (an activation rewrites none, a new file only the blob references). ``views``:
        the record's :func:`stored_views` when the caller made them."""
        uuid = rec["uuid"]
        columns = indexed_columns(rec, valid)
        if previous is not None:
            # Only the columns that change (and always the revision and validity): SQLite then
            # leaves alone the indexes of the others (an activation or a new file writes fewer pages).
            before = indexed_columns(previous, valid)
            columns = {k: v for k, v in columns.items() if k == "valid" or before[k] != v}
        res = run(
            conn,
            self._UPDATE_IMAGE,
            {"b_uuid": uuid, "b_revision": revision, "revision": revision + 1, **columns},
        )
        if res.rowcount != 1:
            raise ConcurrentUpdate(uuid)
        doc = doc_row(rec, self._cfg, views)
        run(conn, self._UPDATE_DOC, {"b_uuid": uuid, **doc})
        self._sync_side_tables(conn, uuid, rec, fresh=False, previous=previous)
        self.append_change(conn, uuid, kind, rec, doc["record"])
        return revision + 1

    def delete(self, conn: Connection, uuid: str, revision: int) -> None:
        res = conn.execute(delete(images).where(images.c.uuid == uuid, images.c.revision == revision))
        if res.rowcount != 1:
            raise ConcurrentUpdate(uuid)
        for table in SIDE_TABLES:
            conn.execute(self._DELETE_SIDE[table], {"b_uuid": uuid})
        conn.execute(delete(image_docs).where(image_docs.c.uuid == uuid))
        self.append_change(conn, uuid, "delete", None)

    def refresh_derived(self, conn: Connection, uuid: str, rec: Mapping[str, Any], valid: bool) -> None:
        """Recompute validity and views after a configuration change (no revision bump)."""
        conn.execute(update(images).where(images.c.uuid == uuid).values(valid=valid))
        conn.execute(self._UPDATE_DOC, {"b_uuid": uuid, **doc_row(rec, self._cfg)})

    def append_change(
        self,
        conn: Connection,
        uuid: str,
        kind: str,
        rec: Mapping[str, Any] | None,
        record_text: str | None = None,
    ) -> None:
        """A change-feed entry; ``record_text``: ``rec`` already dumped (the docs row's)."""
        run(conn, self._INSERT[changes], change_row(uuid, kind, rec, now_timestamp(), record_text))

    def _sync_side_tables(
        self,
        conn: Connection,
        uuid: str,
        rec: Mapping[str, Any],
        fresh: bool,
        previous: Mapping[str, Any] | None = None,
    ) -> None:
        before = side_rows(uuid, previous) if previous is not None and not fresh else None
        for table, rows in side_rows(uuid, rec).items():
            if before is not None and before[table] == rows:
                continue
            if not fresh:
                run(conn, self._DELETE_SIDE[table], {"b_uuid": uuid})
            self._insert_rows(conn, table, rows)

    def _insert_rows(self, conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            run(conn, self._INSERT[table], list(rows))

    # --- meta -------------------------------------------------------------------------------

    def get_meta(self, conn: Connection, key: str) -> str | None:
        row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
        return None if row is None else str(row.value)

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        """Insert or replace, in one statement: catalog processes starting together on one database
        may write the same key at once."""
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = dialect_insert(meta).values(key=key, value=value)
        conn.execute(stmt.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": value}))
