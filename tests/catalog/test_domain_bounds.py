"""Size bounds of stored images (catalog_service.domain.bounds, docs/limits.md)."""

from __future__ import annotations

from typing import Any

import pytest

from catalog_service.domain.bounds import MAX_FIELD_JSON_CHARS, MAX_TEXT_CHARS, bound_errors, record_bytes
from catalog_service.domain.serialize import compact_json
from imgapi_common.errors import FieldError
from imgapi_common.limits import (
    ANSWER_MARGIN_BYTES,
    MAX_CATALOG_ANSWER_BYTES,
    MAX_IMAGE_ANSWER_BYTES,
    MAX_IMAGE_BYTES,
    MAX_PAGE,
)


def rec(**extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"v": 2, "uuid": "5ce1b1a0-4d7a-4d3e-9c5f-3b2a1f0e9d8c", "name": "n", "version": "1"}
    r.update(extra)
    return r


def test_transport_invariant() -> None:
    assert MAX_PAGE * MAX_IMAGE_ANSWER_BYTES + ANSWER_MARGIN_BYTES <= MAX_CATALOG_ANSWER_BYTES
    assert MAX_IMAGE_ANSWER_BYTES >= 2 * MAX_IMAGE_BYTES


@pytest.mark.parametrize("field", sorted(MAX_FIELD_JSON_CHARS))
def test_json_fields_bounded_to_the_character(field: str) -> None:
    limit = MAX_FIELD_JSON_CHARS[field]
    fits = ["x" * (limit - len('[""]'))]
    assert len(compact_json(fits)) == limit
    assert bound_errors(rec(**{field: fits})) == []
    over = ["x" * (limit - len('[""]') + 1)]
    assert bound_errors(rec(**{field: over})) == [
        FieldError(field, "Invalid", f'image "{field}" is too large: {limit + 1} characters (max {limit})')
    ]


@pytest.mark.parametrize("field", sorted(MAX_TEXT_CHARS))
def test_text_fields_bounded(field: str) -> None:
    limit = MAX_TEXT_CHARS[field]
    assert bound_errors(rec(**{field: "1" * limit})) == []
    errs = bound_errors(rec(**{field: "1" * (limit + 1)}))
    assert errs == [
        FieldError(field, "Invalid", f'image "{field}" is too long: {limit + 1} characters (max {limit})')
    ]
    # numbers are not texts: their size is bounded by JSON itself
    assert bound_errors(rec(**{field: 10**300})) == []


def test_length_counts_utf16_units_like_javascript() -> None:
    limit = MAX_TEXT_CHARS["urn"]
    assert bound_errors(rec(urn="😀" * (limit // 2))) == []
    assert [e.field for e in bound_errors(rec(urn="😀" * (limit // 2) + "x"))] == ["urn"]


def test_whole_image_bound_names_the_largest_field() -> None:
    r = rec(description="d" * 60000, tags={"k": "t" * 80000})
    assert record_bytes(r) > MAX_IMAGE_BYTES
    errs = bound_errors(r)
    assert [(e.field, e.code) for e in errs] == [("tags", "Invalid")]
    assert errs[0].message is not None and f"(max {MAX_IMAGE_BYTES})" in errs[0].message


def test_whole_image_counts_utf8_bytes_and_ignores_the_search_array() -> None:
    base = rec(tags={})
    n = MAX_IMAGE_BYTES - record_bytes(base)
    fits = rec(tags={"k": "é" * ((n - len('"k":""')) // 2)})
    assert record_bytes(fits) <= MAX_IMAGE_BYTES
    assert bound_errors({**fits, "tags_search": ["k=" + "x" * 100] * 5000}) == []
    over = rec(tags={"k": "é" * ((n - len('"k":""')) // 2 + 1)})
    assert [e.field for e in bound_errors(over)] == ["tags"]


def test_field_errors_come_before_the_whole_image_check() -> None:
    r = rec(users=["u" * 20000], description="d" * 200000)
    assert [e.field for e in bound_errors(r)] == ["users"]
