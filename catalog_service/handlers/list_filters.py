"""ListImages filters as the listing query takes them (text matches, tags, billing tags)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from catalog_service.adapters.db.listing import TextMatch
from catalog_service.adapters.db.rows import db_text

#: The largest ListImages page.
MAX_LIMIT = 1000


def text_match(raw: str, *, allow_substring: bool = False, allow_negate: bool = False) -> TextMatch | None:
    if raw == "":
        return None
    if allow_substring and raw.startswith("~"):
        return TextMatch(db_text(raw[1:]), substring=True)
    if allow_negate and raw.startswith("!"):
        return TextMatch(db_text(raw[1:]), negate=True)
    return TextMatch(db_text(raw))


def tag_filters(tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((db_text(k), db_text(v)) for k, v in tags.items())


def billing_filters(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(db_text(v) for v in values if v != "")
