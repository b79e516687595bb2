"""JavaScript value semantics (imgapi_common.jsvalues, shared by the catalog and the REST edge)."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog_service.domain.config import DomainConfig
from imgapi_common.jsvalues import (
    boolish,
    copy_json,
    is_js_integer,
    is_true,
    is_uuid,
    js_len,
    js_number,
    js_string,
    to_json_number,
    truthy,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (0, False),
        (0.0, False),
        (-0.0, False),
        (math.nan, False),
        ("", False),
        (True, True),
        (1, True),
        (-1, True),
        (0.5, True),
        (math.inf, True),
        ("0", True),
        ("false", True),
        (" ", True),
        ([], True),
        ({}, True),
        ([0], True),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("", 0.0),
        ("   ", 0.0),
        (" 42 ", 42.0),
        ("\u00a042\ufeff", 42.0),
        ("\n\t3\r", 3.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("-7", -7.0),
        ("+7", 7.0),
        ("1e3", 1000.0),
        ("1E-2", 0.01),
        ("0x1A", 26.0),
        ("0X1a", 26.0),
        ("0o17", 15.0),
        ("0b101", 5.0),
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ("+Infinity", math.inf),
        ("16384", 16384.0),
        (True, 1.0),
        (False, 0.0),
        (None, 0.0),
        ([], 0.0),
        ([5], 5.0),
        (["7"], 7.0),
        ([[]], 0.0),
        ([None], 0.0),
        (3, 3.0),
        (2.5, 2.5),
        (10**400, math.inf),
        (-(10**400), -math.inf),
        ("1e400", math.inf),
    ],
)
def test_js_number(value: Any, expected: float) -> None:
    assert js_number(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "1,5",
        "1_000",
        "inf",
        "nan",
        "NaN",
        "infinity",
        "-0x10",
        "0x",
        "1e",
        "--1",
        "1 2",
        "\x1c1",  # Python's str.strip() would remove this, JavaScript does not
        "\x851",
        "١٢",  # non-ASCII digits
        [1, 2],
        {},
        {"a": 1},
        object(),
    ],
)
def test_js_number_nan(value: Any) -> None:
    assert math.isnan(js_number(value))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (42, "42"),
        (-3, "-3"),
        (1.0, "1"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (-1.5, "-1.5"),
        (0.1, "0.1"),
        (100.0, "100"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e22, "1.5e+22"),
        (123456789.125, "123456789.125"),
        (1e-6, "0.000001"),
        (1.5e-6, "0.0000015"),
        (1e-7, "1e-7"),
        (1.25e-7, "1.25e-7"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (math.nan, "NaN"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (2**53, "9007199254740992"),
        (10**21, "1e+21"),
        ([1, "a", None, True], "1,a,,true"),
        ([], ""),
        ({}, "[object Object]"),
    ],
)
def test_js_string(value: Any, expected: str) -> None:
    assert js_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("True", None),
        ("TRUE", None),
        ("yes", None),
        (1, None),
        (0, None),
        (None, None),
        ("", None),
        ([], None),
    ],
)
def test_boolish(value: Any, expected: bool | None) -> None:
    assert boolish(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc", True),
        ("00000000-0000-0000-0000-000000000000", True),
        ("1FC068B0-13B0-11E2-9F4E-2F3F6A96D9BC", False),
        ("1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc\n", False),
        (" 1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc", False),
        ("1fc068b013b011e29f4e2f3f6a96d9bc", False),
        ("1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bcd", False),
        ("gfc068b0-13b0-11e2-9f4e-2f3f6a96d9bc", False),
        ("", False),
        (None, False),
        (123, False),
        (["1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc"], False),
    ],
)
def test_is_uuid(value: Any, expected: bool) -> None:
    assert is_uuid(value) is expected


def test_to_json_number() -> None:
    assert to_json_number(2.0) == 2 and isinstance(to_json_number(2.0), int)
    assert to_json_number(-0.0) == 0 and isinstance(to_json_number(-0.0), int)
    assert to_json_number(2.5) == 2.5
    assert math.isnan(to_json_number(math.nan))
    assert to_json_number(math.inf) == math.inf
    assert isinstance(to_json_number(16384.0), int)


def test_is_js_integer() -> None:
    assert is_js_integer(3.0)
    assert not is_js_integer(3.5)
    assert not is_js_integer(math.nan)
    assert not is_js_integer(math.inf)


def test_js_len_counts_utf16_code_units() -> None:
    assert js_len("abc") == 3
    assert js_len("é") == 1
    assert js_len("😀") == 2
    assert js_len("\ud800") == 1  # lone surrogate
    assert js_len("") == 0


def test_domain_config_channels_enabled() -> None:
    assert not DomainConfig().channels_enabled
    assert not DomainConfig(mode="public").channels_enabled
    assert DomainConfig(mode="public", channels=("dev",)).channels_enabled
    assert DomainConfig(mode="private", channels=("dev",)).channels_enabled
    # channels are not usable in dc mode
    assert not DomainConfig(mode="dc", channels=("dev",)).channels_enabled


# --- boundaries found by mutation testing (scripts/mutation) ---------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Infinity", math.inf), ("-Infinity", -math.inf), (" +Infinity\n", math.inf), ("infinity", math.nan)],
)
def test_js_number_of_infinity_texts(text: str, expected: float) -> None:
    got = js_number(text)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (10**400, "Infinity"),  # Number() of an integer beyond the double range
        (-(10**400), "-Infinity"),
        (0.0, "0"),
        (-0.0, "0"),  # String(-0) is "0"
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),  # 21 digits: still positional
        (1e21, "1e+21"),  # 22 digits: exponential
        (2**70, "1.1805916207174113e+21"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (-1.5e-7, "-1.5e-7"),
        (2**53 - 1, "9007199254740991"),
    ],
)
def test_js_string_boundaries(value: float, expected: str) -> None:
    assert js_string(value) == expected


def test_js_len_counts_utf16_units_as_an_int() -> None:
    n = js_len("a😀")
    assert n == 3 and isinstance(n, int)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        ("true", True),
        (False, False),
        ("false", False),
        (1, False),
        ("yes", False),
        (None, False),
    ],
)
def test_is_true_only_for_true_and_the_string_true(value: Any, expected: bool) -> None:
    assert is_true(value) is expected


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


def _containers(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in _containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in _containers(v))]
    return []


@given(_json_values)
def test_copy_json_is_a_deep_copy(value: Any) -> None:
    copied = copy_json(value)
    assert copied == value == copy.deepcopy(value)
    assert not set(_containers(copied)) & set(_containers(value))  # shares no dict or list
