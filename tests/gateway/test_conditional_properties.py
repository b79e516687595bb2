"""The conditional headers parsed at the REST edge (gateway.http.conditional.preconditions_from) and
evaluated by the catalog on the typed values (catalog_service.domain.preconditions.evaluate) decide as the
catalog did when it received and parsed the raw header text itself (the reference kept here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from catalog_service.api.convert import conditions_of
from catalog_service.domain.preconditions import evaluate
from gateway.http.conditional import preconditions_from
from imgapi_common.errors import ImgapiError

# --- the reference: the raw headers evaluated as the catalog did before the edge parsed them ------


@dataclass(frozen=True)
class RawConditions:
    if_match: str = ""
    if_none_match: str = ""
    if_modified_since: str = ""
    if_unmodified_since: str = ""


def _raw_tags(header: str) -> list[str]:
    out = []
    for raw in header.split(","):
        t = raw.strip()
        if t.startswith("W/"):
            t = t[2:]
        out.append(t.strip('"'))
    return out


def _raw_matches(header: str, etag: str) -> bool:
    return any(t == "*" or t == etag for t in _raw_tags(header))


def _raw_http_date(value: str) -> datetime | None:
    try:
        d = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def raw_evaluate(cond: RawConditions, etag: str, *, is_get: bool, last_modified: str | None = None) -> bool:
    if cond.if_match and not _raw_matches(cond.if_match, etag):
        raise ImgapiError("PreconditionFailed", f"if-match '{cond.if_match}' didn't match etag '{etag}'")
    if cond.if_none_match and _raw_matches(cond.if_none_match, etag):
        if is_get:
            return True
        raise ImgapiError("PreconditionFailed", f"if-none-match '{cond.if_none_match}' matched etag '{etag}'")
    lm = datetime.fromisoformat(last_modified.replace("Z", "+00:00")) if last_modified else None
    if lm is not None:
        lm = lm.replace(microsecond=0)
        if cond.if_unmodified_since:
            d = _raw_http_date(cond.if_unmodified_since)
            if d is not None and lm > d:
                raise ImgapiError(
                    "PreconditionFailed", f"if-unmodified-since '{cond.if_unmodified_since}' failed"
                )
        if is_get and cond.if_modified_since and not cond.if_none_match:
            d = _raw_http_date(cond.if_modified_since)
            if d is not None and lm <= d:
                return True
    return False


# --- outcomes ---------------------------------------------------------------------------------------

Outcome = tuple[str, object]


def outcome(fn: Callable[[], bool]) -> Outcome:
    try:
        return ("result", fn())
    except ImgapiError as e:
        return ("error", (e.code, e.message))


def edge_then_catalog(headers: dict[str, str], etag: str, is_get: bool, last_modified: str | None) -> Outcome:
    cond = conditions_of(preconditions_from(headers))
    return outcome(lambda: evaluate(cond, etag, is_get=is_get, last_modified=last_modified))


def reference(headers: dict[str, str], etag: str, is_get: bool, last_modified: str | None) -> Outcome:
    raw = RawConditions(*(headers.get(n, "") for n in NAMES))
    try:
        return outcome(lambda: raw_evaluate(raw, etag, is_get=is_get, last_modified=last_modified))
    except OverflowError:
        # A date whose year does not fit a C long made the catalog fail (500): the edge now reads
        # it as HTTP says, as no date at all.
        undated = {k: v for k, v in headers.items() if k not in NAMES[2:] or _raw_http_date_fits(v)}
        return reference(undated, etag, is_get, last_modified)


def _raw_http_date_fits(value: str) -> bool:
    try:
        _raw_http_date(value)
    except OverflowError:
        return False
    return True


# --- strategies -------------------------------------------------------------------------------------

NAMES = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
ETAG = "5f4dcc3b5aa765d61d8327deb882cf99"
pieces = st.sampled_from([ETAG, "*", '"', "W/", ",", " ", "\t", "x", "", "W", "/"])
entries = st.one_of(
    st.just(ETAG),
    st.just("*"),
    st.builds(
        lambda q, w, t: f"{w}{q}{t}{q}",
        st.sampled_from(['"', "", '""']),
        st.sampled_from(["", "W/", "w/"]),
        st.sampled_from([ETAG, "*", "other", ""]),
    ),
    st.lists(pieces, max_size=6).map("".join),
)
tag_headers = st.one_of(
    st.lists(entries, max_size=4).flatmap(
        lambda es: st.sampled_from([",", ", ", " ,"]).map(lambda sep: sep.join(es))
    ),
    st.text(max_size=20),
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=23, minutes=59))])
moments = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30), timezones=zones)
date_headers = st.one_of(
    moments.map(lambda d: format_datetime(d)),
    moments.map(lambda d: format_datetime(d.astimezone(UTC), usegmt=True)),
    moments.map(lambda d: d.strftime("%d %b %Y %H:%M:%S")),  # no zone: UTC
    st.text(max_size=30),
    st.just("Mon, 01 Jan 99999999999999999999 00:00:00 GMT"),
)
last_modified = st.one_of(
    st.none(),
    st.just(""),
    st.just("garbage"),
    moments.map(lambda d: d.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")),
)


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name in NAMES:
        if draw(st.booleans()):
            headers[name] = draw(tag_headers if name in NAMES[:2] else date_headers)
    return headers


@settings(max_examples=800, deadline=None)
@given(header_sets(), st.booleans(), last_modified)
@example(
    {"if-unmodified-since": "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"}, True, "2024-01-01T00:00:00Z"
)
@example({"if-match": '"a, 5f4dcc3b5aa765d61d8327deb882cf99"'}, False, None)
@example(
    {"if-none-match": 'W/"*"', "if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT"},
    True,
    "2024-01-01T00:00:00Z",
)
@example({"if-modified-since": "Fri, 31 Dec 9999 23:59:59 GMT"}, True, "2024-01-01T00:00:00.999Z")
def test_edge_parsing_and_catalog_evaluation_agree_with_the_raw_evaluation(
    headers: dict[str, str], is_get: bool, lm: str | None
) -> None:
    if lm == "garbage":  # the catalog never stores one; the raw evaluation could not parse it either
        lm = None
    assert edge_then_catalog(headers, ETAG, is_get, lm) == reference(headers, ETAG, is_get, lm)


@settings(max_examples=300, deadline=None)
@given(moments, st.integers(min_value=-2, max_value=2), st.booleans())
def test_dates_around_the_last_modified_second(lm: datetime, shift: int, unmodified: bool) -> None:
    """Whole seconds decide: a date one second either side of Last-Modified (the stored time keeps
    its milliseconds, HTTP dates have none)."""
    stored = lm.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    header = format_datetime(
        (lm.replace(microsecond=0) + timedelta(seconds=shift)).astimezone(UTC), usegmt=True
    )
    headers = {"if-unmodified-since" if unmodified else "if-modified-since": header}
    assert edge_then_catalog(headers, ETAG, True, stored) == reference(headers, ETAG, True, stored)
