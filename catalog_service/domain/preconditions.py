"""Conditional request headers (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since),
evaluated against the image ETag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from imgapi_common.errors import ImgapiError


@dataclass(frozen=True)
class Conditions:
    if_match: str = ""
    if_none_match: str = ""
    if_modified_since: str = ""
    if_unmodified_since: str = ""


def _tags(header: str) -> list[str]:
    out = []
    for raw in header.split(","):
        t = raw.strip()
        if t.startswith("W/"):
            t = t[2:]
        out.append(t.strip('"'))
    return out


def _matches(header: str, etag: str) -> bool:
    return any(t == "*" or t == etag for t in _tags(header))


def _http_date(value: str) -> datetime | None:
    try:
        d = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _iso(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def evaluate(cond: Conditions, etag: str, *, is_get: bool, last_modified: str | None = None) -> bool:
    """Raise PreconditionFailed, return True for "not modified" (304 on GET), else False."""
    if cond.if_match and not _matches(cond.if_match, etag):
        raise ImgapiError("PreconditionFailed", f"if-match '{cond.if_match}' didn't match etag '{etag}'")
    if cond.if_none_match and _matches(cond.if_none_match, etag):
        if is_get:
            return True
        raise ImgapiError("PreconditionFailed", f"if-none-match '{cond.if_none_match}' matched etag '{etag}'")
    lm = _iso(last_modified) if last_modified else None
    if lm is not None:
        lm = lm.replace(microsecond=0)
        if cond.if_unmodified_since:
            d = _http_date(cond.if_unmodified_since)
            if d is not None and lm > d:
                raise ImgapiError(
                    "PreconditionFailed",
                    f"if-unmodified-since '{cond.if_unmodified_since}' failed",
                )
        if is_get and cond.if_modified_since and not cond.if_none_match:
            d = _http_date(cond.if_modified_since)
            if d is not None and lm <= d:
                return True
    return False
