"""Parsing and validating ListImages query parameters, in the order the reference server checks
them (so the first error reported is the same)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import cast

from catalog_service.db.listing import State, TextMatch
from catalog_service.db.rows import db_text
from catalog_service.domain.jsvalues import is_uuid, js_number
from catalog_service.domain.serialize import format_timestamp
from imgapi_common.errors import FieldError, invalid_parameter

STATES = ("active", "disabled", "unactivated", "creating", "failed", "all")
MAX_LIMIT = 1000


def parse_limit(raw: str) -> int:
    if raw == "":
        return MAX_LIMIT
    n = js_number(raw)
    if math.isnan(n) or n < 0:
        raise invalid_parameter(f'invalid limit: "{raw}"', [FieldError("state", "Invalid")])
    n_int = int(n) if math.isfinite(n) else MAX_LIMIT
    if n_int == 0:
        return MAX_LIMIT
    return min(n_int, MAX_LIMIT)


def parse_state(raw: str) -> State:
    if raw == "":
        return "active"
    if raw not in STATES:
        raise invalid_parameter(f'invalid state: "{raw}"', [FieldError("state", "Invalid")])
    return cast(State, raw)


def parse_bool_param(name: str, raw: str) -> bool | None:
    if raw == "":
        return None
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise invalid_parameter(
        f'invalid value for "{name}" param: "{raw}" is not a boolean', [FieldError(name, "Invalid")]
    )


def parse_sort(raw: str) -> bool:
    """True for descending order."""
    if raw == "":
        return False
    attr, _, direction = raw.partition(".")
    if attr != "published_at":
        raise invalid_parameter(
            f"invalid 'sort': not a valid sorting attribute: '{attr}'", [FieldError("sort", "Invalid")]
        )
    return direction not in ("", "asc", "ASC")


def text_match(raw: str, *, allow_substring: bool = False, allow_negate: bool = False) -> TextMatch | None:
    if raw == "":
        return None
    if allow_substring and raw.startswith("~"):
        return TextMatch(db_text(raw[1:]), substring=True)
    if allow_negate and raw.startswith("!"):
        return TextMatch(db_text(raw[1:]), negate=True)
    return TextMatch(db_text(raw))


#: ECMAScript's date-time string format (what ``Date.parse`` reads first), with the leniencies of
#: V8's fallback parser that the reference accepts: lower-case ``t``/``z``, a space for ``T``.
_JS_ISO = re.compile(
    r"^(?P<y>[+-]\d{6}|\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2}))?)?"
    r"(?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?$"
)
#: V8 reads a bare number of 3 to 6 digits as a year (``12345`` is 1 January 12345).
_JS_YEAR = re.compile(r"^\d{3,6}$")
#: Instants outside Python's datetime range sort before/after every stored date.
_MIN_DATE = datetime(1, 1, 1, tzinfo=UTC)
_MAX_DATE = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def _year_instant(year: int) -> datetime:
    if year < 1:
        return _MIN_DATE
    if year > 9999:
        return _MAX_DATE
    return datetime(year, 1, 1, tzinfo=UTC)


def _js_iso(m: re.Match[str]) -> datetime | None:
    year = int(m["y"])
    if year < 1 or year > 9999:
        return _year_instant(year)
    try:
        dt = datetime(
            year,
            int(m["mo"] or 1),
            int(m["d"] or 1),
            int(m["h"] or 0),
            int(m["mi"] or 0),
            int(m["s"] or 0),
            int((m["f"] or "0")[:6].ljust(6, "0")),
        )
    except ValueError:
        return None
    tz = m["tz"]
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        return dt.replace(tzinfo=offset)
    return dt.replace(tzinfo=UTC)  # date-only forms are UTC; local times are the server's (UTC)


def parse_date_marker(raw: str) -> str | None:
    """A date marker, read as JavaScript's ``Date`` reads it (``2015``, ``2015-06``,
    ``2015-06-01t10:00:00z``, ``12345``, RFC 1123), normalized to the fixed-width sort text; None
    when it is not a date."""
    text = raw.strip()
    dt: datetime | None
    m = _JS_ISO.match(text)
    if m:
        dt = _js_iso(m)
    elif _JS_YEAR.match(text):
        dt = _year_instant(int(text))
    else:
        try:
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            dt = None
        if dt is not None and dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
    if dt is None:
        return None
    try:
        return format_timestamp(dt.astimezone(UTC))
    except OverflowError:
        return format_timestamp(_MAX_DATE if dt.year > 1 else _MIN_DATE)


def bad_marker(raw: str) -> Exception:
    return invalid_parameter(
        f'invalid value for "marker" param: "{raw}" is not a UUID or date string',
        [FieldError("marker", "Invalid")],
    )


def is_uuid_marker(raw: str) -> bool:
    return is_uuid(raw)


def tag_filters(tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((db_text(k), db_text(v)) for k, v in tags.items())


def billing_filters(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(db_text(v) for v in values if v != "")
