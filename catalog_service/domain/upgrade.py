"""Upgrade of an SDC 6 "dataset" manifest to an image manifest v2 (AdminImportImage only)."""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from imgapi_common.jsvalues import boolish, js_number, to_json_number, truthy

_NO_SECONDS_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}Z")
_COMPRESSION_FROM_EXT = {".gz": "gzip", ".bz2": "bzip2"}
_DROPPED = ("creator_uuid", "vendor_uuid", "creator_name", "cloud_name", "creator_admin", "owner_uuid")
_OBSOLETE = ("platform_type", "created_at", "updated_at", "_url")


def _file_compression(entry: Mapping[str, Any]) -> str:
    where = entry.get("path") or entry.get("url")
    ext = posixpath.splitext(where)[1] if isinstance(where, str) else ""
    return _COMPRESSION_FROM_EXT.get(ext, "none")


def upgrade_dataset_manifest(body: Mapping[str, Any]) -> dict[str, Any]:
    """The v2 form of a dataset manifest (a new dict; ``body`` is untouched).

    Raises ``ValueError`` when the manifest cannot be upgraded (e.g. it has both ``owner`` and
    ``creator_uuid``, or malformed ``files``); callers then use the body unchanged.
    """
    if "creator_uuid" not in body:
        raise ValueError('dataset manifest has no "creator_uuid"')
    if "owner" in body:
        raise ValueError('dataset manifest has both "owner" and "creator_uuid"')
    m: dict[str, Any] = copy.deepcopy(dict(body))
    # 1. owner
    m["owner"] = m["creator_uuid"]
    for key in _DROPPED:
        m.pop(key, None)
    # 2. visibility
    restricted = m.pop("restricted_to_uuid", None)
    if truthy(restricted):
        m["public"] = False
        m["acl"] = [restricted]
    else:
        m["public"] = True
    # 3. disabled / state
    raw_disabled = m.get("disabled", False)
    as_bool = boolish(raw_disabled)
    disabled = as_bool if as_bool is not None else truthy(raw_disabled)
    m["disabled"] = disabled
    m["state"] = "disabled" if disabled else "active"
    # 4. published_at
    if not truthy(m.get("published_at")) and truthy(m.get("created_at")):
        m["published_at"] = m["created_at"]
    published_at = m.get("published_at")
    if isinstance(published_at, str) and _NO_SECONDS_RE.fullmatch(published_at):
        m["published_at"] = published_at[:-1] + ":00Z"
    # 5. files
    if "files" in m:
        files = m["files"]
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise ValueError('dataset manifest "files" is not an array of objects')
        for f in files:
            if "compression" not in f:
                f["compression"] = _file_compression(f)
            f.pop("path", None)
            f.pop("url", None)
    # 6. image_size
    if "image_size" in m:
        m["image_size"] = to_json_number(js_number(m["image_size"]))
    # 7. obsolete fields, version
    for key in _OBSOLETE:
        m.pop(key, None)
    m["v"] = 2
    return m
