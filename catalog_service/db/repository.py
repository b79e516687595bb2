"""Reading and writing image records.

The stored record (a JSON object) is the source of truth; every write also refreshes the indexed
columns and side tables derived from it, in the same transaction, together with a change-feed
entry. Updates are conditional on the revision that was read (optimistic concurrency): a writer
that lost a race gets :class:`ConcurrentUpdate` and retries on fresh data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, update

from catalog_service.clock import now_timestamp
from catalog_service.db.listing import ListQuery, build_list_query
from catalog_service.db.schema import (
    changes,
    image_acl,
    image_billing_tags,
    image_blobs,
    image_channels,
    image_docs,
    image_tags,
    images,
    meta,
)
from catalog_service.domain.config import DomainConfig
from catalog_service.domain.jsvalues import is_true
from catalog_service.domain.serialize import compact_json, etag_of, serialize_image
from catalog_service.domain.validation import tags_search_array

EPOCH_SORT = "1970-01-01T00:00:00.000Z"
_PUBLISHED = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$")


class ConcurrentUpdate(Exception):
    """The record changed since it was read; re-read and retry."""


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
    views: tuple[str, str, str, str] = ("", "", "", "")


def published_sort_key(value: Any) -> str:
    """``published_at`` as fixed-width text whose order is time order (epoch when absent/odd)."""
    if isinstance(value, str):
        m = _PUBLISHED.match(value)
        if m:
            frac = (m.group(2) or "").ljust(3, "0")[:3]
            return f"{m.group(1)}.{frac}Z"
    return EPOCH_SORT


_ESC = "\uffff"


def db_text(s: str) -> str:
    """A string as kept in the indexed columns and side tables, and as compared with them.

    PostgreSQL text cannot hold NUL, so NUL (and the escape character itself) are escaped
    injectively: equality means the same thing on both engines. Identity for ordinary text.
    """
    if "\x00" not in s and _ESC not in s:
        return s
    return s.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "0")


def _text(v: Any) -> str:
    return db_text(v) if isinstance(v, str) else ("" if v is None else json.dumps(v))


def dump_record(rec: Mapping[str, Any]) -> str:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


def load_record(text: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(text)
    return out


def blob_ids_of(rec: Mapping[str, Any]) -> set[str]:
    ids: set[str] = set()
    files = rec.get("files")
    if isinstance(files, list):
        for f in files:
            if isinstance(f, dict) and isinstance(f.get("blob_id"), str):
                ids.add(f["blob_id"])
    icon = rec.get("icon")
    if isinstance(icon, dict) and isinstance(icon.get("blob_id"), str):
        ids.add(icon["blob_id"])
    return ids


def stored_views(rec: Mapping[str, Any], cfg: DomainConfig) -> tuple[str, str, str, str]:
    """The pre-rendered REST views of a record for API v1 and v2 (stored with it):
    (view_v1, etag_v1, view_v2, etag_v2)."""
    try:
        v2 = serialize_image(rec, cfg, include_channels=True, include_admin_fields=False)
        v1 = (
            serialize_image(rec, cfg, include_channels=False, include_admin_fields=False)
            if "channels" in v2
            else v2
        )
    except Exception:  # an unrenderable record is invalid anyway: never served
        return "{}", etag_of({}), "{}", etag_of({})
    j2 = compact_json(v2)
    j1 = j2 if v1 is v2 else compact_json(v1)
    return j1, etag_of(v1), j2, etag_of(v2)


def tag_rows(rec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, value) search pairs of a record's tags; none when its search array was removed."""
    tags = rec.get("tags")
    if "tags_search" not in rec or not isinstance(tags, dict):
        return []
    return [
        (db_text(k), db_text(item[len(k) + 1 :]))
        for k, item in zip(tags.keys(), tags_search_array(tags), strict=True)
    ]


def _doc(rec: Mapping[str, Any], cfg: DomainConfig) -> dict[str, Any]:
    v1, e1, v2, e2 = stored_views(rec, cfg)
    return {"record": dump_record(rec), "view_v1": v1, "etag_v1": e1, "view_v2": v2, "etag_v2": e2}


def _columns(rec: Mapping[str, Any], valid: bool) -> dict[str, Any]:
    origin = rec.get("origin")
    return {
        "owner": _text(rec.get("owner")),
        "name": _text(rec.get("name")),
        "version": _text(rec.get("version")),
        "type": _text(rec.get("type")),
        "os": _text(rec.get("os")),
        "state": _text(rec.get("state")),
        "activated": is_true(rec.get("activated")),
        "disabled": is_true(rec.get("disabled")),
        "public": is_true(rec.get("public")),
        "published_sort": published_sort_key(rec.get("published_at")),
        "has_published_at": isinstance(rec.get("published_at"), str) and bool(rec.get("published_at")),
        "origin": origin if isinstance(origin, str) and len(origin) <= 64 and origin else None,
        "valid": valid,
        "expires_at": _text(rec.get("expires_at")) or None,
    }


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

    def get(self, conn: Connection, uuid: str) -> StoredImage | None:
        row = conn.execute(self._GET, {"uuid": uuid}).first()
        if row is None:
            return None
        return StoredImage(
            load_record(row.record),
            int(row.revision),
            bool(row.valid),
            (row.view_v1, row.etag_v1, row.view_v2, row.etag_v2),
        )

    def exists(self, conn: Connection, uuid: str) -> bool:
        return conn.execute(self._EXISTS, {"uuid": uuid}).first() is not None

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
        used = {
            r.blob_id
            for r in conn.execute(select(image_blobs.c.blob_id).where(image_blobs.c.blob_id.in_(ids)))
        }
        return [b for b in ids if b not in used]

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(images)).scalar_one())

    def lock(self, conn: Connection, uuid: str, *, shared: bool) -> bool:
        """Lock an image row until the end of the transaction (PostgreSQL; SQLite write
        transactions are serialized anyway); False when it does not exist."""
        stmt = select(images.c.uuid).where(images.c.uuid == uuid).with_for_update(read=shared)
        return conn.execute(stmt).first() is not None

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
        c, d = images.c, image_docs.c
        view_col, etag_col = (d.view_v2, d.etag_v2) if include_channels else (d.view_v1, d.etag_v1)
        columns = [c.uuid, c.revision, view_col.label("view"), etag_col.label("etag")]
        if full:
            columns.append(d.record)
        stmt = build_list_query(q, dialect, columns)
        return [] if stmt is None else conn.execute(stmt).all()

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

    def insert(self, conn: Connection, rec: Mapping[str, Any], valid: bool, kind: str = "create") -> int:
        uuid = rec["uuid"]
        conn.execute(insert(images).values(uuid=uuid, revision=1, **_columns(rec, valid)))
        conn.execute(insert(image_docs).values(uuid=uuid, **_doc(rec, self._cfg)))
        self._sync_side_tables(conn, uuid, rec, fresh=True)
        self.append_change(conn, uuid, kind, rec)
        return 1

    def insert_many(self, conn: Connection, recs: Sequence[tuple[Mapping[str, Any], bool]]) -> None:
        """Bulk insert (imports, seeding, benchmarks): one statement per table."""
        if not recs:
            return
        conn.execute(insert(images), [{"uuid": r["uuid"], "revision": 1, **_columns(r, v)} for r, v in recs])
        conn.execute(insert(image_docs), [{"uuid": r["uuid"], **_doc(r, self._cfg)} for r, _ in recs])
        rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in SIDE_TABLES}
        for rec, _ in recs:
            for table, table_rows in self._side_rows(rec["uuid"], rec).items():
                rows[table] += table_rows
        for table, table_rows in rows.items():
            _bulk(conn, table, table_rows)
        now = now_timestamp()
        conn.execute(insert(changes), [_change_row(r["uuid"], "create", r, now) for r, _ in recs])

    def update(self, conn: Connection, rec: Mapping[str, Any], revision: int, valid: bool, kind: str) -> int:
        """Replace the record if it is still at ``revision``; returns the new revision."""
        uuid = rec["uuid"]
        res = conn.execute(
            update(images)
            .where(images.c.uuid == uuid, images.c.revision == revision)
            .values(revision=revision + 1, **_columns(rec, valid))
        )
        if res.rowcount != 1:
            raise ConcurrentUpdate(uuid)
        conn.execute(update(image_docs).where(image_docs.c.uuid == uuid).values(**_doc(rec, self._cfg)))
        self._sync_side_tables(conn, uuid, rec, fresh=False)
        self.append_change(conn, uuid, kind, rec)
        return revision + 1

    def delete(self, conn: Connection, uuid: str, revision: int) -> None:
        res = conn.execute(delete(images).where(images.c.uuid == uuid, images.c.revision == revision))
        if res.rowcount != 1:
            raise ConcurrentUpdate(uuid)
        _delete_side_rows(conn, uuid)
        conn.execute(delete(image_docs).where(image_docs.c.uuid == uuid))
        self.append_change(conn, uuid, "delete", None)

    def refresh_derived(self, conn: Connection, uuid: str, rec: Mapping[str, Any], valid: bool) -> None:
        """Recompute validity and views after a configuration change (no revision bump)."""
        conn.execute(update(images).where(images.c.uuid == uuid).values(valid=valid))
        conn.execute(update(image_docs).where(image_docs.c.uuid == uuid).values(**_doc(rec, self._cfg)))

    def append_change(self, conn: Connection, uuid: str, kind: str, rec: Mapping[str, Any] | None) -> None:
        conn.execute(insert(changes).values(**_change_row(uuid, kind, rec, now_timestamp())))

    def _side_rows(self, uuid: str, rec: Mapping[str, Any]) -> dict[Any, list[dict[str, Any]]]:
        """The rows of every side table derived from one record."""
        acl = rec.get("acl")
        billing = rec.get("billing_tags")
        return {
            image_acl: [
                {"image_uuid": uuid, "account": a}
                for a in _unique_strings([acl] if isinstance(acl, str) else acl)
            ],
            image_tags: [{"image_uuid": uuid, "key": k, "value": v} for k, v in tag_rows(rec)],
            image_billing_tags: [
                {"image_uuid": uuid, "tag": t}
                for t in _unique_strings([billing] if isinstance(billing, str) else billing)
            ],
            image_channels: [
                {"image_uuid": uuid, "channel": c} for c in _unique_strings(rec.get("channels"))
            ],
            image_blobs: [{"image_uuid": uuid, "blob_id": b} for b in sorted(blob_ids_of(rec))],
        }

    def _sync_side_tables(self, conn: Connection, uuid: str, rec: Mapping[str, Any], fresh: bool) -> None:
        if not fresh:
            _delete_side_rows(conn, uuid)
        for table, rows in self._side_rows(uuid, rec).items():
            _bulk(conn, table, rows)

    # --- meta -------------------------------------------------------------------------------

    def get_meta(self, conn: Connection, key: str) -> str | None:
        row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
        return None if row is None else str(row.value)

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        if conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
            conn.execute(insert(meta).values(key=key, value=value))


def _unique_strings(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    seen: dict[str, None] = {}
    for v in values:
        if isinstance(v, str):
            seen.setdefault(db_text(v), None)
    return list(seen)


def _bulk(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(table), list(rows))


#: Tables derived from a record's acl, tags, billing tags, channels and blobs.
SIDE_TABLES = (image_acl, image_tags, image_billing_tags, image_channels, image_blobs)


def _delete_side_rows(conn: Connection, uuid: str) -> None:
    for t in SIDE_TABLES:
        conn.execute(delete(t).where(t.c.image_uuid == uuid))


def _change_row(uuid: str, kind: str, rec: Mapping[str, Any] | None, changed_at: str) -> dict[str, Any]:
    return {
        "image_uuid": uuid,
        "kind": kind,
        "changed_at": changed_at,
        "record": None if rec is None else dump_record(rec),
    }
