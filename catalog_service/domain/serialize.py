"""THE API-view serializer (what clients see of a stored record) and the JSON text renderings used
for bodies and ETags.

Every endpoint must produce an image through :func:`view_fields` (:func:`serialize_image` is its
copy), so the same image renders byte-identically everywhere, and the ETag (:func:`etag_of`) is
reproducible.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from catalog_service.domain.config import DomainConfig
from imgapi_common.jsvalues import (
    boolish,
    is_array_index,
    js_key_order,
    js_number,
    js_string,
    to_json_number,
    truthy,
)

_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")


# --- JSON text ------------------------------------------------------------------------------------


def _str_json(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    if s.isascii():  # O(1) in CPython: no surrogate to look for
        return out
    try:
        s.encode("utf-8")  # in C, much faster than the search below; fails on lone surrogates
    except UnicodeEncodeError:
        # Like JSON.stringify (ES2019+), escape lone surrogates so the text is valid UTF-8.
        return _LONE_SURROGATE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)
    return out


def _num_json(x: int | float) -> str:
    if isinstance(x, int):
        return js_string(x)  # beyond 2**53, the double JavaScript would hold
    if not math.isfinite(x):
        return "null"  # JSON.stringify(NaN) === "null"
    return js_string(x)


def _encode(obj: Any, indent: int | None, level: int) -> str:
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, str):
        return _str_json(obj)
    if isinstance(obj, (int, float)):
        return _num_json(obj)
    if isinstance(obj, Mapping):
        items = list(
            js_key_order([(k if isinstance(k, str) else js_string(k), v) for k, v in obj.items()]).items()
        )
        if not items:
            return "{}"
        sep = ":" if indent is None else ": "
        parts = [f"{_str_json(k)}{sep}{_encode(v, indent, level + 1)}" for k, v in items]
        return _join(parts, "{", "}", indent, level)
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        return _join([_encode(v, indent, level + 1) for v in obj], "[", "]", indent, level)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _join(parts: list[str], open_: str, close: str, indent: int | None, level: int) -> str:
    if indent is None:
        return open_ + ",".join(parts) + close
    inner = "\n" + " " * (indent * (level + 1))
    outer = "\n" + " " * (indent * level)
    return open_ + inner + ("," + inner).join(parts) + outer + close


def _slow_compact_json(obj: Any) -> str:
    """The reference rendering of :func:`compact_json`, for any value (the fast path's fallback)."""
    return _encode(obj, None, 0)


# --- the fast path: orjson, for the values it writes exactly as the encoder above ---------------
#
# Under _ORJSON_OPTIONS orjson refuses (and the encoder above renders) ints beyond 53 bits (JavaScript
# prints the double it would hold them as), subclasses of str/int/dict/list (their methods may
# disagree with their data), dates and dataclasses (refused above too), types it has no rendering for
# (other Mappings, sets, bytes...), lone surrogates (JavaScript escapes them), non-str keys, cycles and
# nesting of 254 levels or more. Strings it escapes as JSON.stringify does: short forms for \b \t \n
# \f \r, lower-case \u00XX for the other controls, DEL, U+2028/2029 and other non-ASCII written raw;
# tuples become arrays. What it accepts but writes differently, _orjson_writes_alike finds: every
# float (orjson writes 1.0 and 1e+16, JavaScript 1 and 10000000000000000), array-index keys
# (JavaScript lists them first) and the enum members, UUIDs and Fragments orjson has renderings for.

_ORJSON_OPTIONS = (
    orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)

_SCALAR_TYPES = frozenset({str, int, bool, type(None)})
_CONTAINER_TYPES = frozenset({dict, list, tuple})
_ASCII_DIGITS = frozenset("0123456789")


def _refuse(obj: Any) -> Any:
    """orjson's ``default`` hook: what orjson cannot write itself is left to the encoder above."""
    raise TypeError(f"not for the fast path: {type(obj).__name__}")


def _orjson_writes_alike(obj: Any) -> bool:
    """Whether orjson, having accepted ``obj`` under _ORJSON_OPTIONS (so no cycle, only plain-str
    keys), wrote what the encoder above writes: ``obj`` holds nothing but exact dicts, lists and tuples
    and exact str/int/bool/None values, and no dict has an array-index key."""
    if type(obj) not in _CONTAINER_TYPES:
        return type(obj) in _SCALAR_TYPES
    pending: list[Any] = [obj]
    while pending:
        node = pending.pop()
        if type(node) is dict:
            for key in node:
                if key[:1] in _ASCII_DIGITS and is_array_index(key):
                    return False
            children = node.values()
        else:
            children = node
        for child in children:
            kind = type(child)
            if kind not in _SCALAR_TYPES:
                if kind not in _CONTAINER_TYPES:
                    return False
                pending.append(child)
    return True


def _fast_compact_json(obj: Any) -> bytes | None:
    """The UTF-8 text of ``compact_json(obj)`` from orjson, or None when only the encoder above
    renders ``obj`` right. orjson goes first: it refuses cycles, which the walk would follow forever."""
    try:
        text = orjson.dumps(obj, default=_refuse, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is TypeError
        return None
    return text if _orjson_writes_alike(obj) else None


def compact_json(obj: Any) -> str:
    """``JSON.stringify(obj)``: no spaces, non-ASCII kept, integral floats as integers (1.0 -> 1)."""
    fast = _fast_compact_json(obj)
    return fast.decode("utf-8") if fast is not None else _slow_compact_json(obj)


def pretty_json(obj: Any) -> str:
    """``JSON.stringify(obj, null, 2)``: the text of REST response bodies."""
    return _encode(obj, 2, 0)


def etag_of(view: Mapping[str, Any]) -> str:
    """Lower-case hex SHA-1 of the compact JSON text of an API view."""
    fast = _fast_compact_json(view)
    text = fast if fast is not None else _slow_compact_json(view).encode("utf-8")
    return hashlib.sha1(text).hexdigest()


def etag_of_json(text: str) -> str:
    """:func:`etag_of` a view whose compact JSON text (:func:`compact_json`) is ``text``."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def format_timestamp(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC with exactly 3 fraction digits (naive = UTC)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{dt.microsecond // 1000:03d}Z"
    )


# --- the API view ---------------------------------------------------------------------------------


def _as_list(v: Any) -> list[Any]:
    """``acl``/``billing_tags`` normalization: a bare string is a one-element array."""
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return v
    return []


def _file_view(f: Any, include_admin_fields: bool) -> dict[str, Any]:
    entry: Mapping[str, Any] = f if isinstance(f, Mapping) else {}
    out: dict[str, Any] = {}
    for key in ("sha1", "size", "compression"):
        if key in entry:
            out[key] = entry[key]
    if entry.get("dataset_guid") is not None:
        out["dataset_guid"] = entry["dataset_guid"]
    if include_admin_fields and "stor" in entry:
        out["stor"] = entry["stor"]
    return out


def serialize_image(
    rec: Mapping[str, Any], cfg: DomainConfig, *, include_channels: bool, include_admin_fields: bool
) -> dict[str, Any]:
    """The API view of a stored record: each field shown by its rule, in IMGAPI's key order. The result
    shares nothing with ``rec``."""
    return copy.deepcopy(
        view_fields(rec, cfg, include_channels=include_channels, include_admin_fields=include_admin_fields)
    )


def view_fields(
    rec: Mapping[str, Any], cfg: DomainConfig, *, include_channels: bool, include_admin_fields: bool
) -> dict[str, Any]:
    """:func:`serialize_image` without the copy: values may be ``rec``'s own, so the result is for
    rendering (:func:`compact_json`, :func:`pretty_json`) only, never to be changed."""
    r = rec
    out: dict[str, Any] = {"v": to_json_number(js_number(r.get("v")))}
    for key in ("uuid", "owner", "name", "version", "state"):
        if key in r:
            out[key] = r[key]
    out["disabled"] = boolish(r.get("disabled")) or False
    out["public"] = boolish(r.get("public")) or False
    if r.get("published_at") is not None:
        out["published_at"] = r["published_at"]
    for key in ("type", "os"):
        if key in r and r[key] != "null":
            out[key] = r[key]
    files = r.get("files")
    out["files"] = [_file_view(f, include_admin_fields) for f in files] if isinstance(files, list) else []
    acl = _as_list(r.get("acl"))
    if acl:
        out["acl"] = acl
    for key in ("description", "homepage", "eula"):
        if truthy(r.get(key)):
            out[key] = r[key]
    if truthy(r.get("icon")):
        out["icon"] = True
    for key in ("urn", "requirements", "users"):
        if truthy(r.get(key)):
            out[key] = r[key]
    if truthy(r.get("generate_passwords")):
        # Quirk: only a truthy stored value is shown, converted to a boolean ("false" -> false).
        gp = boolish(r["generate_passwords"])
        out["generate_passwords"] = True if gp is None else gp
    for key in ("inherited_directories", "origin", "nic_driver", "disk_driver", "cpu_type", "image_size"):
        if truthy(r.get(key)):
            out[key] = r[key]
    if truthy(r.get("tags")):
        out["tags"] = r["tags"]
    if cfg.mode != "public":
        billing_tags = _as_list(r.get("billing_tags"))
        if billing_tags:
            out["billing_tags"] = billing_tags
        traits = r.get("traits")
        if isinstance(traits, (Mapping, list)) and traits:  # (an array: an object with index keys)
            out["traits"] = traits
    if r.get("state") == "failed" and truthy(r.get("error")):
        out["error"] = r["error"]
    if include_channels and truthy(r.get("channels")):
        out["channels"] = r["channels"]
    return out
