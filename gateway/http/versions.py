"""``Accept-Version`` negotiation: a node-semver range matcher for the two REST versions.

IMGAPI (restify) treats the header as a node-semver *range* and serves the request when one of its
versions (``1.0.0``, ``2.0.0``) satisfies it. Only release versions are ever tested, so the matcher
implements the range grammar (``||``, hyphen ranges, ``~``/``~>``, ``^``, ``<``/``<=``/``>``/
``>=``/``=``, X-ranges and partial versions) without prerelease bookkeeping beyond ordering.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

SERVER_VERSIONS: tuple[tuple[int, int, int], ...] = ((1, 0, 0), (2, 0, 0))
#: Range assumed when no ``Accept-Version`` header is sent.
DEFAULT_RANGE = "~1"

_INF = 1 << 62
_PARTIAL = re.compile(
    r"^(?P<prefix>[v=\s]*)(?P<maj>x|X|\*|0|[1-9]\d*)"
    r"(?:\.(?P<min>x|X|\*|0|[1-9]\d*)"
    r"(?:\.(?P<pat>x|X|\*|0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?)?)?$"
)
_COMPARATOR = re.compile(r"^(?P<op><=|>=|<|>|=|~>|~|\^)?\s*(?P<ver>\S*)$")

# A version key: (major, minor, patch, release?) -- prereleases sort before their release.
Key = tuple[int, int, int, int]


class InvalidRange(ValueError):
    pass


@dataclass(frozen=True)
class _Bound:
    key: Key
    inclusive: bool


@dataclass(frozen=True)
class _Interval:
    low: _Bound | None = None
    high: _Bound | None = None
    empty: bool = False

    def contains(self, v: Key) -> bool:
        if self.empty:
            return False
        if self.low is not None and (v < self.low.key or (v == self.low.key and not self.low.inclusive)):
            return False
        return not (
            self.high is not None and (v > self.high.key or (v == self.high.key and not self.high.inclusive))
        )


def _num(s: str | None) -> int | None:
    return None if s is None or s in ("x", "X", "*") else int(s)


def _parse_partial(text: str, loose: bool = False) -> tuple[int | None, int | None, int | None, bool]:
    """A version with wildcards or missing parts allowed. node-semver lets any run of ``v`` and ``=``
    lead a partial version (``v=1``, ``==1.x``), but a full ``MAJOR.MINOR.PATCH`` only a single
    ``v``, unless it follows ``~`` or ``^`` (``loose``)."""
    m = _PARTIAL.match(text)
    if m is None:
        raise InvalidRange(text)
    maj, mnr, pat = _num(m["maj"]), _num(m["min"]), _num(m["pat"])
    full = maj is not None and mnr is not None and pat is not None
    if full and not loose and m["prefix"] not in ("", "v"):
        raise InvalidRange(text)
    # Anything after a wildcard is a wildcard too ("1.x.3" == "1.x").
    if maj is None:
        mnr = pat = None
    elif mnr is None:
        pat = None
    return maj, mnr, pat, m["pre"] is not None


def _key(maj: int, mnr: int, pat: int, pre: bool = False) -> Key:
    return (maj, mnr, pat, 0 if pre else 1)


def _lowest(maj: int, mnr: int | None, pat: int | None, pre: bool) -> Key:
    return _key(maj, mnr or 0, pat or 0, pre and pat is not None)


def _next_after(maj: int, mnr: int | None) -> Key:
    """The first version above the X-range ``maj[.mnr].x``."""
    if mnr is None:
        return _key(maj + 1, 0, 0, True)
    return _key(maj, mnr + 1, 0, True)


def _ge(k: Key) -> _Bound:
    return _Bound(k, True)


def _lt(k: Key) -> _Bound:
    return _Bound(k, False)


def _comparator(text: str) -> _Interval:
    m = _COMPARATOR.match(text)
    if m is None:
        raise InvalidRange(text)
    op = m["op"] or ""
    if op and not m["ver"]:
        raise InvalidRange(text)  # node-semver: an operator needs a version ("~", ">=" alone)
    ver = m["ver"] or "*"
    maj, mnr, pat, pre = _parse_partial(ver, loose=op in ("~", "~>", "^"))
    if op in ("~", "~>"):
        if maj is None:
            return _Interval()
        low = _ge(_lowest(maj, mnr, pat, pre))
        return _Interval(low, _lt(_next_after(maj, mnr)))
    if op == "^":
        if maj is None:
            return _Interval()
        low = _ge(_lowest(maj, mnr, pat, pre))
        if maj > 0 or mnr is None:
            high = _key(maj + 1, 0, 0, True)
        elif mnr > 0 or pat is None:
            high = _key(0, mnr + 1, 0, True)
        else:
            high = _key(0, 0, pat + 1, True)
        return _Interval(low, _lt(high))
    if maj is None:  # "*", ">=*", "<*", ...
        return _Interval(empty=op in ("<", ">"))
    full = pat is not None
    if op in ("", "="):
        if full:
            k = _key(maj, mnr or 0, pat or 0, pre)
            return _Interval(_ge(k), _Bound(k, True))
        return _Interval(_ge(_lowest(maj, mnr, pat, pre)), _lt(_next_after(maj, mnr)))
    if op == ">=":
        return _Interval(low=_ge(_lowest(maj, mnr, pat, pre)))
    if op == ">":
        if full:
            return _Interval(low=_Bound(_key(maj, mnr or 0, pat or 0, pre), False))
        return _Interval(low=_ge(_next_after(maj, mnr)))
    if op == "<":
        return _Interval(high=_lt(_lowest(maj, mnr, pat, pre) if full else _key(maj, mnr or 0, 0, True)))
    # "<="
    if full:
        return _Interval(high=_Bound(_key(maj, mnr or 0, pat or 0, pre), True))
    return _Interval(high=_lt(_next_after(maj, mnr)))


def _hyphen(low_text: str, high_text: str) -> list[_Interval]:
    lmaj, lmnr, lpat, lpre = _parse_partial(low_text)
    hmaj, hmnr, hpat, hpre = _parse_partial(high_text)
    low = None if lmaj is None else _ge(_lowest(lmaj, lmnr, lpat, lpre))
    if hmaj is None:
        high = None
    elif hpat is None:
        high = _lt(_next_after(hmaj, hmnr))
    else:
        high = _Bound(_key(hmaj, hmnr or 0, hpat, hpre), True)
    return [_Interval(low, high)]


# node-semver's own expressions for where whitespace inside a range is dropped. A version may be led
# by any run of "v", "=" and spaces; an operator's trailing spaces go only where a match begins, so
# ">= 1" is ">=1" but "v= 1" stays two (invalid) words.
_NUMID = r"(?:0|[1-9]\d*)"
_XID = rf"(?:{_NUMID}|x|X|\*)"
_PREID = r"(?:\d*[a-zA-Z-][a-zA-Z0-9-]*)"
_BUILD = r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)"
_PRERELEASE = rf"(?:-(?:{_NUMID}|{_PREID})(?:\.(?:{_NUMID}|{_PREID}))*)"
_PRERELEASE_LOOSE = rf"(?:-?(?:[0-9]+|{_PREID})(?:\.(?:[0-9]+|{_PREID}))*)"
_LOOSE_PLAIN = rf"[v=\s]*[0-9]+\.[0-9]+\.[0-9]+{_PRERELEASE_LOOSE}?{_BUILD}?"
_XRANGE_PLAIN = rf"[v=\s]*{_XID}(?:\.{_XID}(?:\.{_XID}(?:{_PRERELEASE})?{_BUILD}?)?)?"
_COMPARATOR_TRIM = re.compile(rf"(\s*)((?:<|>)?=?)\s*({_LOOSE_PLAIN}|{_XRANGE_PLAIN})")
_TILDE_TRIM = re.compile(r"(\s*)~>?\s+")
_CARET_TRIM = re.compile(r"(\s*)\^\s+")
_HYPHEN = re.compile(rf"^\s*({_XRANGE_PLAIN})\s+-\s+({_XRANGE_PLAIN})\s*$")


def _trim(part: str) -> str:
    part = _COMPARATOR_TRIM.sub(lambda m: m[1] + m[2] + m[3], part)
    part = _TILDE_TRIM.sub(lambda m: m[1] + "~", part)
    return _CARET_TRIM.sub(lambda m: m[1] + "^", part)


def _parse_range(text: str) -> list[list[_Interval]]:
    alternatives: list[list[_Interval]] = []
    for part in text.split("||"):
        h = _HYPHEN.match(part.strip())
        if h is not None:
            alternatives.append(_hyphen(h[1], h[2]))
            continue
        tokens = _trim(part.strip()).split()
        alternatives.append([_comparator(t) for t in tokens] if tokens else [_Interval()])
    return alternatives


def satisfies(version: tuple[int, int, int], range_text: str) -> bool:
    """node-semver ``satisfies(version, range)`` for a release version (raises InvalidRange)."""
    key = _key(*version)
    return any(all(i.contains(key) for i in conj) for conj in _parse_range(range_text))


@dataclass(frozen=True)
class Negotiated:
    range_text: str
    #: The v2 view (``channels`` emitted): the range is ``*`` or admits 2.0.0.
    include_channels: bool


@functools.lru_cache(maxsize=256)  # a handful of distinct headers in practice; bounded anyway
def negotiate(header: str | None) -> Negotiated | None:
    """The negotiated view for an ``Accept-Version`` header, or None when no version satisfies it."""
    # Absent: ~1. Present but empty: node-semver reads the empty range as "*" (the v2 view).
    text = DEFAULT_RANGE if header is None else header
    try:
        matched = [v for v in SERVER_VERSIONS if satisfies(v, text)]
    except (InvalidRange, ValueError):
        return None
    if not matched:
        return None
    return Negotiated(text, text.strip() == "*" or (2, 0, 0) in matched)
