"""compact_json's orjson fast path writes exactly what the reference encoder writes, or stands aside."""

from __future__ import annotations

import enum
import hashlib
import math
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog_service.domain.serialize import _fast_compact_json, _slow_compact_json, compact_json, etag_of

MAX_SAFE = 2**53


class Str(str):
    pass


class Int(int):
    pass


class List(list[Any]):
    pass


class ItemsReversed(dict[Any, Any]):
    """A dict subclass whose Mapping view disagrees with its storage: the reference encoder follows
    ``items()``, so the fast path (which reads the storage) must not take it."""

    def items(self) -> Any:
        return reversed(list(super().items()))


class Level(enum.IntEnum):
    HIGH = 3


class Colour(enum.StrEnum):
    RED = "red"


class Plain(enum.Enum):
    A = 1


def typical_view() -> dict[str, Any]:
    return {
        "v": 2,
        "uuid": "5ce1b1a0-4d7a-4d3e-9c5f-3b2a1f0e9d8c",
        "owner": "91ba0e64-2547-11e2-a972-df579e5fddb3",
        "name": "base-64-lts",
        "version": "22.4.0",
        "state": "active",
        "disabled": False,
        "public": True,
        "published_at": "2023-01-10T18:42:11.123Z",
        "type": "zone-dataset",
        "os": "smartos",
        "files": [{"sha1": "a" * 40, "size": 153772032, "compression": "gzip"}],
        "acl": ["86055c40-2547-11e2-8a6b-4bb37edc84ba"],
        "description": 'Quotes " and \\ and\ttabs, é and 😀',
        "requirements": {"min_platform": {"7.0": "20141030T081701Z"}, "min_ram": 256, "ssh_key": True},
        "users": [{"name": "root"}],
        "tags": {"role": "os", "kernel": "5.15", "01": "not an index", "-1": "nor this"},
        "channels": ["dev", "release"],
    }


# --- strategies -------------------------------------------------------------------------------------

any_char = st.characters(codec=None, exclude_categories=())  # lone surrogates included
any_text = st.one_of(
    st.text(alphabet=any_char, max_size=12),
    st.text(
        alphabet=st.sampled_from('\x00\x08\t\n\x0b\x0c\r\x1f "\\/\x7f\u2028\u2029\ud800\udfffé😀a'),
        max_size=8,
    ),
)
#: Keys JavaScript would list first (canonical array indexes) next to near misses it keeps in place.
index_like_keys = st.one_of(
    st.integers(0, 2**32 + 2).map(str),
    st.sampled_from(
        ["0", "01", "00", "-1", "+1", "1.0", " 1", "1e3", "\u0661", "4294967294", "4294967295", ""]
    ),
)
keys = st.one_of(any_text, index_like_keys)
odd_keys = st.one_of(st.integers(-(2**60), 2**60), st.floats(), st.none(), st.booleans(), keys.map(Str))
big_ints = st.sampled_from(
    [MAX_SAFE - 1, MAX_SAFE, MAX_SAFE + 1, 2**63 - 1, 2**63, 2**64, 10**30, 10**400]
).flatmap(lambda n: st.sampled_from([n, -n]))
ints = st.one_of(st.integers(-(2**70), 2**70), big_ints)
floats = st.one_of(st.floats(), st.sampled_from([1.0, -0.0, 1e16, 1e20, 1e21, 1.5e-7, 1e-6, 5e-324, 2.0**53]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats,
    any_text,
    ints.map(Int),
    any_text.map(Str),
    st.sampled_from([Level.HIGH, Colour.RED]),
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    entries = st.lists(st.tuples(st.one_of(keys, odd_keys), children), max_size=5)
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.lists(children, max_size=3).map(List),
        entries.map(dict),
        st.lists(st.tuples(keys, children), max_size=5).map(dict),  # str keys only: often the fast path
        entries.map(OrderedDict),
        entries.map(lambda e: MappingProxyType(dict(e))),
        entries.map(ItemsReversed),
    )


json_like = st.recursive(scalars, containers, max_leaves=25)

plain_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(MAX_SAFE - 1), MAX_SAFE - 1),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
)
plain_keys = st.text(alphabet=st.characters(codec="utf-8"), max_size=8).filter(lambda k: not k[:1].isdigit())
plain_json = st.recursive(
    plain_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(plain_keys, children, max_size=5),
    ),
    max_leaves=25,
)


# --- properties ---------------------------------------------------------------------------------------


# 500 random values a run (each CI run draws new ones); 1500 took ~19 s of the suite for little more.
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(json_like)
def test_compact_json_equals_the_reference_encoder(value: Any) -> None:
    expected = _slow_compact_json(value)
    assert compact_json(value) == expected
    wrapped = {"view": value}
    assert etag_of(wrapped) == hashlib.sha1(_slow_compact_json(wrapped).encode("utf-8")).hexdigest()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(plain_json)
def test_plain_values_take_the_fast_path(value: Any) -> None:
    """Dicts, lists and tuples of strings, safe ints, booleans and nulls never fall back."""
    fast = _fast_compact_json(value)
    assert fast is not None
    assert fast.decode("utf-8") == _slow_compact_json(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_orjson_floats_never_look_like_javascript_integers(x: float) -> None:
    """Why floats fall back: orjson marks every float (1.0, 1e+16) where JavaScript prints 1 and
    10000000000000000."""
    text = orjson.dumps(x)
    assert b"." in text or b"e" in text


# --- explicit examples --------------------------------------------------------------------------------

FAST = True
FALLBACK = False


@pytest.mark.parametrize(
    ("value", "text", "fast"),
    [
        # key order: array indexes first, ascending; near misses keep their place
        ({"b": 1, "a": 2}, '{"b":1,"a":2}', FAST),
        ({"x": 1, "1": 2, "0": 3}, '{"0":3,"1":2,"x":1}', FALLBACK),
        ({"x": {"y": 1, "12": 2}}, '{"x":{"12":2,"y":1}}', FALLBACK),
        ({"x": 1, "4294967294": 2}, '{"4294967294":2,"x":1}', FALLBACK),
        ({"x": 1, "4294967295": 2, "01": 3, "-1": 4, "1.0": 5, " 1": 6, "\u0661": 7}, None, FAST),
        # non-str keys are converted as String() does
        ({1: "a", None: "b", False: "c", 1.5: "d"}, '{"1":"a","null":"b","false":"c","1.5":"d"}', FALLBACK),
        ({Str("k"): 1}, '{"k":1}', FALLBACK),
        # numbers
        (1.0, "1", FALLBACK),
        ([2.0, -0.0, 1.5], "[2,0,1.5]", FALLBACK),
        ({"a": 1e16}, '{"a":10000000000000000}', FALLBACK),
        ([1e21, 1.5e-7, 1e-6], "[1e+21,1.5e-7,0.000001]", FALLBACK),
        ([math.nan, math.inf, -math.inf], "[null,null,null]", FALLBACK),
        ([MAX_SAFE - 1, -(MAX_SAFE - 1)], "[9007199254740991,-9007199254740991]", FAST),
        ([MAX_SAFE, MAX_SAFE + 1], "[9007199254740992,9007199254740992]", FALLBACK),
        ([-(MAX_SAFE + 1)], "[-9007199254740992]", FALLBACK),
        ({"n": 2**64}, '{"n":18446744073709552000}', FALLBACK),
        ([True, False, None, 0], "[true,false,null,0]", FAST),
        (Int(5), "5", FALLBACK),
        (Level.HIGH, "3", FALLBACK),
        # strings: JSON.stringify's escapes, DEL and the line separators written raw
        ("\x00\x07\x08\t\n\x0b\x0c\r\x1f", '"\\u0000\\u0007\\b\\t\\n\\u000b\\f\\r\\u001f"', FAST),
        ('"\\/\x7f\u2028\u2029é😀', '"\\"\\\\/\x7f\u2028\u2029é😀"', FAST),
        (["a\ud800b"], '["a\\ud800b"]', FALLBACK),
        ({"\udc00": 1}, '{"\\udc00":1}', FALLBACK),
        ("😀\ud83d", '"😀\\ud83d"', FALLBACK),
        (Str("s"), '"s"', FALLBACK),
        (Colour.RED, '"red"', FALLBACK),
        # containers
        ((1, (2, ()), {}), "[1,[2,[]],{}]", FAST),
        (List([1]), "[1]", FALLBACK),
        (OrderedDict([("b", 1), ("a", 2)]), '{"b":1,"a":2}', FALLBACK),
        (MappingProxyType({"b": 1, "0": 2}), '{"0":2,"b":1}', FALLBACK),
        (ItemsReversed([("a", 1), ("b", 2)]), '{"b":2,"a":1}', FALLBACK),
        ([[[[[]]]]] * 2, "[[[[[]]]],[[[[]]]]]", FAST),
    ],
)
def test_tricky_values(value: Any, text: str | None, fast: bool) -> None:
    expected = _slow_compact_json(value)
    if text is not None:
        assert expected == text
    assert compact_json(value) == expected
    assert (_fast_compact_json(value) is not None) is fast


def test_a_typical_view_takes_the_fast_path() -> None:
    view = typical_view()
    assert _fast_compact_json(view) == _slow_compact_json(view).encode("utf-8")
    assert etag_of(view) == hashlib.sha1(_slow_compact_json(view).encode("utf-8")).hexdigest()


def test_nesting_beyond_orjson_limit_falls_back() -> None:
    deep: list[Any] = []
    for _ in range(300):
        deep = [deep]
    assert _fast_compact_json(deep) is None
    assert compact_json(deep) == "[" * 301 + "]" * 301


def test_cycles_still_fail_as_before() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        compact_json(loop)


@pytest.mark.parametrize(
    "value",
    [
        object(),
        uuid.UUID(int=1),
        Plain.A,
        datetime(2024, 1, 1, tzinfo=UTC),
        {1, 2},
        b"bytes",
        orjson.Fragment(b"[1]"),
    ],
)
def test_values_orjson_would_accept_are_still_refused(value: Any) -> None:
    """orjson has renderings for UUIDs, enums, dates and Fragments; compact_json refuses them as the
    reference encoder does."""
    with pytest.raises(TypeError):
        compact_json({"a": [value]})
    with pytest.raises(TypeError):
        etag_of({"a": value})
