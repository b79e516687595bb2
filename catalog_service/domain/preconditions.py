"""Conditional requests (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since), evaluated
against the image ETag. The REST edge parses the headers; here they are typed values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from imgapi_common.errors import ImgapiError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TagCondition:
    """An If-Match / If-None-Match list: ``any`` for ``*``, else the opaque tags (compared weakly)."""

    any: bool = False
    tags: tuple[str, ...] = ()
    #: the header as sent, only quoted in the error message
    header: str = ""

    def matches(self, etag: str) -> bool:
        return self.any or etag in self.tags


@dataclass(frozen=True)
class DateCondition:
    """An If-Modified-Since / If-Unmodified-Since date, in seconds since the epoch."""

    seconds: int
    #: the header as sent, only quoted in the error message
    header: str = ""


@dataclass(frozen=True)
class Conditions:
    if_match: TagCondition | None = None
    if_none_match: TagCondition | None = None
    if_modified_since: DateCondition | None = None
    if_unmodified_since: DateCondition | None = None


def _seconds(iso: str) -> int | None:
    """A stored ISO-8601 time in whole seconds since the epoch (naive: UTC); None if it does not parse."""
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - _EPOCH).days * 86400 + (t - _EPOCH).seconds


def evaluate(cond: Conditions, etag: str, *, is_get: bool, last_modified: str | None = None) -> bool:
    """Raise PreconditionFailed, return True for "not modified" (304 on GET), else False."""
    if cond.if_match is not None and not cond.if_match.matches(etag):
        raise ImgapiError(
            "PreconditionFailed", f"if-match '{cond.if_match.header}' didn't match etag '{etag}'"
        )
    if cond.if_none_match is not None and cond.if_none_match.matches(etag):
        if is_get:
            return True
        raise ImgapiError(
            "PreconditionFailed", f"if-none-match '{cond.if_none_match.header}' matched etag '{etag}'"
        )
    lm = _seconds(last_modified) if last_modified else None
    if lm is not None:
        unmodified = cond.if_unmodified_since
        if unmodified is not None and lm > unmodified.seconds:
            raise ImgapiError("PreconditionFailed", f"if-unmodified-since '{unmodified.header}' failed")
        modified = cond.if_modified_since
        if is_get and modified is not None and cond.if_none_match is None and lm <= modified.seconds:
            return True
    return False
