"""ListImages' query parameters, parsed at the REST edge into the typed catalog request.

IMGAPI checks them in a fixed order, after the channel: ``inclAdminFields`` (a boolean; ``true``
needs an authenticated caller on a public or private server), ``limit``, ``state``, then — unless
an anonymous caller asked a public/private server for non-active images, which is answered with
an empty list at once — ``public``, ``sort`` and a date ``marker``. The first failing check is the
error; the channel's own error comes before any of them.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from google.protobuf.timestamp_pb2 import Timestamp
from imgapi.v1 import catalog_pb2

from gateway.http.query import Query
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter
from imgapi_common.jsvalues import is_uuid, js_number

State = catalog_pb2.ListImagesRequest.State

#: The ``state`` values and what they mean to the catalog.
STATES: dict[str, State.ValueType] = {
    "active": catalog_pb2.ListImagesRequest.STATE_ACTIVE,
    "disabled": catalog_pb2.ListImagesRequest.STATE_DISABLED,
    "unactivated": catalog_pb2.ListImagesRequest.STATE_UNACTIVATED,
    "creating": catalog_pb2.ListImagesRequest.STATE_CREATING,
    "failed": catalog_pb2.ListImagesRequest.STATE_FAILED,
    "all": catalog_pb2.ListImagesRequest.STATE_ALL,
}
#: States an anonymous caller of a public/private server never sees: the answer is ``[]``.
HIDDEN_FROM_ANONYMOUS = frozenset({"disabled", "unactivated", "creating", "failed"})
MAX_LIMIT = 1000


def parse_limit(raw: str) -> int:
    """JavaScript ``Number()`` of the text; 0, empty or above the maximum is the maximum."""
    if raw == "":
        return MAX_LIMIT
    n = js_number(raw)
    if math.isnan(n) or n < 0:
        raise invalid_parameter(f'invalid limit: "{raw}"', [FieldError("state", "Invalid")])
    n_int = int(n) if math.isfinite(n) else MAX_LIMIT
    if n_int == 0:
        return MAX_LIMIT
    return min(n_int, MAX_LIMIT)


def parse_state(raw: str) -> str:
    if raw == "":
        return "active"
    if raw not in STATES:
        raise invalid_parameter(f'invalid state: "{raw}"', [FieldError("state", "Invalid")])
    return raw


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


#: ECMAScript's date-time string format (what ``Date.parse`` reads first), with the leniencies of
#: V8's fallback parser that IMGAPI accepts: lower-case ``t``/``z``, a space for ``T``.
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


def parse_date_marker(raw: str) -> datetime | None:
    """A date marker, read as JavaScript's ``Date`` reads it (``2015``, ``2015-06``,
    ``2015-06-01t10:00:00z``, ``12345``, RFC 1123), in UTC and clamped to years 1..9999 (with
    millisecond precision, as JavaScript dates have); None when it is not a date."""
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
        utc = dt.astimezone(UTC)
    except OverflowError:
        return _MAX_DATE if dt.year > 1 else _MIN_DATE
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def bad_marker(raw: str) -> ImgapiError:
    return invalid_parameter(
        f'invalid value for "marker" param: "{raw}" is not a UUID or date string',
        [FieldError("marker", "Invalid")],
    )


def admin_fields_unauthorized() -> ImgapiError:
    return ImgapiError("UnauthorizedError", 'Unauthorized (auth required to use "inclAdminFields" parameter)')


def admin_fields(q: Query, mode: str, authenticated: bool) -> bool:
    """``inclAdminFields``: absent is false; ``true`` needs authentication outside dc mode."""
    value = q.boolean("inclAdminFields")
    if value and mode != "dc" and not authenticated:
        raise admin_fields_unauthorized()
    return bool(value)


def _set_marker(req: catalog_pb2.ListImagesRequest, raw: str) -> None:
    if raw == "":
        return
    if is_uuid(raw):
        req.marker_uuid = raw
        return
    date = parse_date_marker(raw)
    if date is None:
        raise bad_marker(raw)
    ts = Timestamp()
    ts.FromDatetime(date)
    req.marker_published_at.CopyFrom(ts)


def fill_list_request(req: catalog_pb2.ListImagesRequest, q: Query, mode: str, authenticated: bool) -> None:
    """Parse the checked parameters into ``req`` in IMGAPI's order; raises the first failure."""
    req.incl_admin_fields = admin_fields(q, mode, authenticated)
    req.limit = parse_limit(q.raw("limit"))
    state = parse_state(q.raw("state"))
    req.state = STATES[state]
    if mode != "dc" and not authenticated and state in HIDDEN_FROM_ANONYMOUS:
        return  # the catalog answers [] whatever follows
    public = q.boolean("public")
    if public is not None:
        req.public = public
    req.descending = parse_sort(q.raw("sort"))
    _set_marker(req, q.raw("marker"))
