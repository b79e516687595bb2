"""IMGAPI's pretty JSON via orjson must be byte-identical to ``json.dumps(indent=2)``."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.http.responses import dumps, pretty

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=400)
@given(st.dictionaries(st.text(max_size=10), _json, max_size=6))
def test_one_object_as_json_would_print_it(obj: dict[str, Any]) -> None:
    text = _compact(obj)
    assert pretty(text) == dumps(json.loads(text))


@settings(max_examples=200)
@given(st.lists(st.dictionaries(st.text(max_size=6), _json, max_size=4), max_size=5))
def test_arrays_as_json_would_print_them(objs: list[dict[str, Any]]) -> None:
    texts = [_compact(o) for o in objs]
    assert pretty("[" + ",".join(texts) + "]") == dumps([json.loads(t) for t in texts])


def test_integers_beyond_64_bits_keep_their_digits() -> None:
    text = '{"size":123456789012345678901234567890,"n":-9223372036854775809}'
    out = pretty(text)
    assert b"123456789012345678901234567890" in out and b"-9223372036854775809" in out


def test_hex_digits_in_strings_keep_the_fast_path() -> None:
    """UUIDs and SHA-1s are full of ``<digit>e<digit>``; only number tokens may send a listing to
    the slow re-indentation (which took ~25x longer for a 1000-image page)."""
    from gateway.http.responses import _ORJSON_DIFFERS

    fast = ['{"uuid":"489bcf63-cc1e-4eaa-88e7-a05597401332","sha1":"8e8a0e5","n":12}', '{"d":"x,1.5"}']
    slow = [_compact(v) for v in ({"a": 1e16}, {"a": [1, -1.5e-30]}, {"a": 2**64}, {"a": {"b": 2e300}})]
    assert [bool(_ORJSON_DIFFERS.search(t)) for t in fast] == [False, False]
    assert [bool(_ORJSON_DIFFERS.search(t)) for t in slow] == [True, True, True, True]
    for t in fast + slow:
        assert pretty(t) == dumps(json.loads(t))
