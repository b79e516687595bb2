"""Conditional requests (RFC 9110 §13) at the REST edge.

``If-Match``, ``If-None-Match``, ``If-Modified-Since`` and ``If-Unmodified-Since`` are evaluated by
the catalog, which knows the image's ETag and times: :func:`preconditions_from` parses them into
the gRPC request's typed conditions. ``If-Range`` only matters for a ``Range`` request the gateway
serves itself (:func:`if_range_matches`); :func:`validators` are the ``Etag`` / ``Last-Modified``
headers of a file or icon answer (200, 206 or 304).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from google.protobuf import timestamp_pb2
from imgapi.v1 import common_pb2

_HTTP_DATE_START = re.compile(r"^[A-Za-z]{3},")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def entity_tags(header: str) -> common_pb2.EntityTagCondition:
    """An If-Match / If-None-Match list as IMGAPI reads it: entries split at every comma, a ``W/``
    prefix and the surrounding quotes dropped, ``*`` (however written) for any."""
    cond = common_pb2.EntityTagCondition(header=header)
    for entry in header.split(","):
        t = entry.strip()
        weak = t.startswith("W/")
        t = (t[2:] if weak else t).strip('"')
        if t == "*":
            cond.any = True
        else:
            cond.tags.add(opaque=t, weak=weak)
    return cond


def http_date(header: str) -> common_pb2.DateCondition | None:
    """An If-Modified-Since / If-Unmodified-Since date; None when it is not an HTTP date (a date
    without a zone is UTC)."""
    try:
        d = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    seconds = (d - _EPOCH) // timedelta(seconds=1)
    return common_pb2.DateCondition(time=timestamp_pb2.Timestamp(seconds=seconds), header=header)


def preconditions_from(
    headers: Mapping[str, str],
    subject: common_pb2.Preconditions.Subject.ValueType = common_pb2.Preconditions.SUBJECT_IMAGE,
) -> common_pb2.Preconditions:
    """The request's conditional headers for the catalog to evaluate; an empty header is none."""
    p = common_pb2.Preconditions(subject=subject)
    if if_match := headers.get("if-match", ""):
        p.if_match.CopyFrom(entity_tags(if_match))
    if if_none_match := headers.get("if-none-match", ""):
        p.if_none_match.CopyFrom(entity_tags(if_none_match))
    for name, field in (
        ("if-modified-since", p.if_modified_since),
        ("if-unmodified-since", p.if_unmodified_since),
    ):
        date = http_date(headers[name]) if headers.get(name, "") else None
        if date is not None:
            field.CopyFrom(date)
    return p


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
