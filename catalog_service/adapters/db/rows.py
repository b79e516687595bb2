"""How an image record becomes rows: its indexed columns, its side-table rows (ACL, tags, billing
tags, channels, blobs), its pre-rendered REST views, its change-feed row, and the text escaping
that makes both database engines compare strings alike."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson

from catalog_service.adapters.db.schema import (
    image_acl,
    image_billing_tags,
    image_blobs,
    image_channels,
    image_tags,
)
from catalog_service.domain.config import DomainConfig
from catalog_service.domain.records import tags_search_array
from catalog_service.domain.serialize import compact_json, etag_of, etag_of_json, view_fields
from imgapi_common.jsvalues import is_true

EPOCH_SORT = "1970-01-01T00:00:00.000Z"
_PUBLISHED = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$")


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


#: The pre-rendered REST views of a record: (view_v1, etag_v1, view_v2, etag_v2).
Views = tuple[str, str, str, str]


def stored_views(rec: Mapping[str, Any], cfg: DomainConfig) -> Views:
    """The pre-rendered REST views of a record for API v1 and v2 (stored with it):
    (view_v1, etag_v1, view_v2, etag_v2)."""
    try:
        v2 = view_fields(rec, cfg, include_channels=True, include_admin_fields=False)
        v1 = (
            view_fields(rec, cfg, include_channels=False, include_admin_fields=False)
            if "channels" in v2
            else v2
        )
    except Exception:  # an unrenderable record is invalid anyway: never served
        return "{}", etag_of({}), "{}", etag_of({})
    j2 = compact_json(v2)
    j1 = j2 if v1 is v2 else compact_json(v1)
    return j1, etag_of_json(j1), j2, etag_of_json(j2)


def tag_rows(rec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, value) search pairs of a record's tags; none when its search array was removed."""
    tags = rec.get("tags")
    if "tags_search" not in rec or not isinstance(tags, dict):
        return []
    return [
        (db_text(k), db_text(item[len(k) + 1 :]))
        for k, item in zip(tags.keys(), tags_search_array(tags), strict=True)
    ]


#: The longest ``images.tag_pairs`` text kept. The column is part of the ordered listing indexes,
#: whose entries must stay small (PostgreSQL refuses a B-tree entry above ~2.7 kB); an image whose
#: tags encode longer keeps NULL there, and a tag filter probes ``image_tags`` for it instead.
MAX_TAG_PAIRS = 512


def _pair(key: str, value: str) -> str:
    return orjson.dumps([key, value]).decode()


def tag_pair_needle(key: str, value: str) -> str:
    """What ``images.tag_pairs`` contains exactly when the image carries the search pair
    ``key``/``value`` (both :func:`db_text`): the pair as a compact JSON array text.

    Such a text can only be found where one of the image's pairs starts, and then only as that
    whole pair: ``["`` never occurs inside a JSON string (a quote there is escaped), so it marks
    the start of a pair, and a JSON value read from there ends where that pair ends. A pair that
    cannot be stored (a lone surrogate, which orjson refuses) gets a needle that matches nothing:
    ``json.dumps`` writes ``", "`` between the two, never found at the start of a stored pair."""
    try:
        return _pair(key, value)
    except orjson.JSONEncodeError:
        return json.dumps([key, value])


def tag_pairs_text(pairs: list[tuple[str, str]]) -> str | None:
    """``images.tag_pairs`` of an image with these search pairs (:func:`tag_rows`): their
    :func:`tag_pair_needle` texts, sorted and joined; "" without tags; None when longer than
    ``MAX_TAG_PAIRS``."""
    text = "".join(sorted(_pair(k, v) for k, v in pairs))
    return text if len(text) <= MAX_TAG_PAIRS else None


def doc_row(rec: Mapping[str, Any], cfg: DomainConfig, views: Views | None = None) -> dict[str, Any]:
    """The docs row of ``rec``; ``views``: :func:`stored_views` of it when already made."""
    v1, e1, v2, e2 = views if views is not None else stored_views(rec, cfg)
    return {"record": dump_record(rec), "view_v1": v1, "etag_v1": e1, "view_v2": v2, "etag_v2": e2}


def indexed_columns(rec: Mapping[str, Any], valid: bool) -> dict[str, Any]:
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
        "tag_pairs": tag_pairs_text(tag_rows(rec)),
    }


def _unique_strings(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    seen: dict[str, None] = {}
    for v in values:
        if isinstance(v, str):
            seen.setdefault(db_text(v), None)
    return list(seen)


#: Tables derived from a record's acl, tags, billing tags, channels and blobs.
SIDE_TABLES = (image_acl, image_tags, image_billing_tags, image_channels, image_blobs)


def side_rows(uuid: str, rec: Mapping[str, Any]) -> dict[Any, list[dict[str, Any]]]:
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
        image_channels: [{"image_uuid": uuid, "channel": c} for c in _unique_strings(rec.get("channels"))],
        image_blobs: [{"image_uuid": uuid, "blob_id": b} for b in sorted(blob_ids_of(rec))],
    }


def change_row(
    uuid: str, kind: str, rec: Mapping[str, Any] | None, changed_at: str, record_text: str | None = None
) -> dict[str, Any]:
    """A change-feed row; ``record_text``: :func:`dump_record` of ``rec`` when already made."""
    if record_text is None and rec is not None:
        record_text = dump_record(rec)
    return {"image_uuid": uuid, "kind": kind, "changed_at": changed_at, "record": record_text}
