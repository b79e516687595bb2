"""Conditional requests (RFC 9110 §13) at the REST edge.

``If-Match``, ``If-None-Match``, ``If-Modified-Since`` and ``If-Unmodified-Since`` are evaluated by
the catalog, which knows the image's ETag and times: :func:`preconditions_from` carries them into
the gRPC request as received. ``If-Range`` only matters for a ``Range`` request the gateway serves
itself (:func:`if_range_matches`); :func:`validators` are the ``Etag`` / ``Last-Modified`` headers
of a file or icon answer (200, 206 or 304).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from imgapi.v1 import common_pb2

_HTTP_DATE_START = re.compile(r"^[A-Za-z]{3},")


def preconditions_from(
    headers: Mapping[str, str],
    subject: common_pb2.Preconditions.Subject.ValueType = common_pb2.Preconditions.SUBJECT_IMAGE,
) -> common_pb2.Preconditions:
    """The request's conditional headers, as received, for the catalog to evaluate."""
    return common_pb2.Preconditions(
        if_match=headers.get("if-match", ""),
        if_none_match=headers.get("if-none-match", ""),
        if_modified_since=headers.get("if-modified-since", ""),
        if_unmodified_since=headers.get("if-unmodified-since", ""),
        subject=subject,
    )


def http_date_of(iso: str) -> str:
    """``Last-Modified`` from a stored ISO-8601 time ("" when it does not parse)."""
    if not iso:
        return ""
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return format_datetime(dt.astimezone(UTC), usegmt=True)


def validators(etag: str, mtime: str) -> dict[str, str]:
    """``Etag`` and, when the stored time parses, ``Last-Modified``."""
    headers = {"Etag": etag}
    last_modified = http_date_of(mtime)
    if last_modified:
        headers["Last-Modified"] = last_modified
    return headers


def if_range_matches(if_range: str | None, etag: str, last_modified: str) -> bool:
    """RFC 9110 §13.1.5: a strong ETag or the exact Last-Modified date must match (no header: True)."""
    if if_range is None:
        return True
    v = if_range.strip()
    if v.startswith("W/"):
        return False
    if v.startswith('"') or not _HTTP_DATE_START.match(v):
        return v.strip('"') == etag
    try:
        return bool(last_modified) and parsedate_to_datetime(v) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
