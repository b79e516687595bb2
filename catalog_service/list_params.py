"""Parsing and validating ListImages query parameters (endpoints.md §2.1), in the spec's order."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import cast

from catalog_service.db.listing import State, TextMatch
from catalog_service.db.repository import db_text
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


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_date_marker(raw: str) -> str | None:
    """A date marker normalized to the fixed-width sort text, or None when it is not a date."""
    m = _ISO.match(raw.strip())
    dt: datetime | None = None
    if m:
        try:
            y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
            h, mi, s = int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0)
            frac = (m.group(7) or "0")[:6].ljust(6, "0")
            dt = datetime(y, mo, d, h, mi, s, int(frac))
            tz = m.group(8)
            if tz and tz != "Z":
                sign = 1 if tz[0] == "+" else -1
                digits = tz[1:].replace(":", "")
                from datetime import timedelta, timezone

                dt = dt.replace(
                    tzinfo=timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
                )
            else:
                dt = dt.replace(tzinfo=UTC)
        except ValueError:
            dt = None
    else:
        try:
            dt = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            dt = None
        if dt is not None and dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
    if dt is None:
        return None
    return format_timestamp(dt.astimezone(UTC))


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
