"""Size bounds of stored images (docs/limits.md), checked before anything is stored.

The manifest rules (:mod:`.validation`) bound only some fields (``name``, ``description``,
``tags``...). Every other field a client can set is bounded here, and so is the whole record
(:data:`imgapi_common.limits.MAX_IMAGE_BYTES`), so that every answer carrying images, up to a
ListImages page of 1000, fits the transport. A write whose result breaks a bound is refused with
422 ``ValidationFailed`` naming the field, before it commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog_service.domain.serialize import compact_json
from imgapi_common.errors import FieldError
from imgapi_common.jsvalues import js_len
from imgapi_common.limits import MAX_IMAGE_BYTES

#: Fields without a size rule of their own in IMGAPI: the most characters of their compact JSON.
#: Real images use a few hundred characters for each (a handful of users, networks, traits).
MAX_FIELD_JSON_CHARS: dict[str, int] = {
    "acl": 16384,  # ~420 account UUIDs
    "requirements": 16384,
    "users": 16384,
    "traits": 16384,
    "billing_tags": 16384,
    "inherited_directories": 16384,
    "error": 16384,
    "channels": 16384,
    "files": 16384,  # server-set, except dataset_guid and the docker digests
}

#: Short free-text fields (and the text forms of numeric fields).
MAX_TEXT_CHARS: dict[str, int] = {
    "urn": 1024,
    "nic_driver": 1024,
    "disk_driver": 1024,
    "cpu_type": 1024,
    "image_size": 64,
    "v": 64,
}

#: The derived tags search array is stored beside the record, never answered.
_NOT_ANSWERED = ("tags_search",)


#: No field's JSON can be longer than the whole record's: a record within this many characters
#: keeps every bound of MAX_FIELD_JSON_CHARS (the common case: its fields need no text of their own).
_SMALLEST_FIELD_BOUND = min(MAX_FIELD_JSON_CHARS.values())


def _shown_json(rec: Mapping[str, Any]) -> str:
    """The compact JSON of what answers carry of a record (no derived keys)."""
    return compact_json({k: v for k, v in rec.items() if k not in _NOT_ANSWERED})


def record_bytes(rec: Mapping[str, Any]) -> int:
    """UTF-8 size of what answers carry of a record: its compact JSON without derived keys."""
    return len(_shown_json(rec).encode("utf-8", "surrogatepass"))


def _json_chars(v: Any) -> int:
    return js_len(compact_json(v))


def bound_errors(rec: Mapping[str, Any], max_bytes: int = MAX_IMAGE_BYTES) -> list[FieldError]:
    """Every size bound ``rec`` breaks, one ``Invalid`` error per field; [] when it fits.
    ``max_bytes``: the whole-image bound (client writes use ``MAX_CLIENT_IMAGE_BYTES``)."""
    errs: list[FieldError] = []
    shown = _shown_json(rec)
    fields = MAX_FIELD_JSON_CHARS.items() if js_len(shown) > _SMALLEST_FIELD_BOUND else ()
    for field, limit in fields:
        if field in rec and (n := _json_chars(rec[field])) > limit:
            errs.append(
                FieldError(field, "Invalid", f'image "{field}" is too large: {n} characters (max {limit})')
            )
    for field, limit in MAX_TEXT_CHARS.items():
        v = rec.get(field)
        if isinstance(v, str) and (n := js_len(v)) > limit:
            errs.append(
                FieldError(field, "Invalid", f'image "{field}" is too long: {n} characters (max {limit})')
            )
    if not errs and (size := len(shown.encode("utf-8", "surrogatepass"))) > max_bytes:
        largest = max(
            (k for k in rec if k not in _NOT_ANSWERED),
            key=lambda k: len(compact_json(rec[k]).encode("utf-8", "surrogatepass")),
        )
        errs.append(
            FieldError(
                largest,
                "Invalid",
                f"image is too large: {size} bytes of JSON (max {max_bytes}); "
                f'its largest field is "{largest}"',
            )
        )
    return errs
