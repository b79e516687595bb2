"""Property tests: arbitrary inputs either fail validation cleanly or round-trip exactly."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.json_body import has_lone_surrogate, lone_surrogate_walk
from catalog_service.domain.records import build_record, tags_search_array
from catalog_service.domain.serialize import compact_json, pretty_json, serialize_image
from catalog_service.domain.update import apply_update
from catalog_service.domain.validation import validate_record
from imgapi_common.errors import ImgapiError
from imgapi_common.jsvalues import js_key_order, js_len, js_number, js_string, truthy

DC = DomainConfig()
PUBLIC_CH = DomainConfig(mode="public", channels=("dev",))
OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
NEW = "5ce1b1a0-4d7a-4d3e-9c5f-3b2a1f0e9d8c"

NAME_RE = re.compile(r"[A-Za-z0-9._/ -]+")
VERSION_RE = re.compile(r"[A-Za-z0-9._/+-]+")

# Any text, including NUL, quotes, control characters, astral characters and lone surrogates.
any_char = st.characters(codec=None, exclude_categories=())
any_text = st.text(alphabet=any_char, max_size=40)
long_text = st.builds(
    lambda c, n: c * n, st.text(alphabet=any_char, min_size=1, max_size=3), st.integers(0, 1100)
)
#: Descriptions around the 10,240 UTF-16 unit limit (astral characters count twice).
near_description_limit = st.builds(
    lambda pad, tail: "d" * pad + tail,
    st.integers(10240 - 8, 10240),
    st.text(alphabet=st.sampled_from("x😀é\x00"), max_size=6),
)
name_like = st.text(alphabet=st.sampled_from("aZ09._/ -+!\"'\x00\n😀é"), max_size=30)
texts = st.one_of(any_text, long_text, name_like)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
tags_objects = st.dictionaries(any_text, json_values, max_size=6)


def body(**overrides: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "v": 2,
        "owner": OWNER,
        "name": "foo",
        "version": "1.0",
        "type": "zone-dataset",
        "os": "smartos",
    }
    b.update(overrides)
    return b


def build_and_view(b: dict[str, Any], cfg: DomainConfig = DC) -> dict[str, Any] | ImgapiError:
    try:
        rec = build_record(b, cfg, for_import=False, new_uuid=NEW)
    except ImgapiError as exc:
        return exc
    assert validate_record(rec, cfg) == []
    return serialize_image(rec, cfg, include_channels=True, include_admin_fields=True)


def same_json(parsed: Any, original: Any) -> bool:
    """JSON equality where a float compares with the number its JS text parses back to."""
    if isinstance(original, float) or (
        isinstance(original, int) and not isinstance(original, bool) and abs(original) >= 2**53
    ):  # (integers beyond 2**53 print as the double JavaScript holds)
        return (
            isinstance(parsed, (int, float))
            and not isinstance(parsed, bool)
            and float(parsed) == float(original)
        )
    if isinstance(original, dict):
        return (
            isinstance(parsed, dict)
            and list(parsed) == list(js_key_order(list(original.items())))
            and all(same_json(parsed[k], original[k]) for k in original)
        )
    if isinstance(original, list):
        return (
            isinstance(parsed, list)
            and len(parsed) == len(original)
            and all(same_json(p, o) for p, o in zip(parsed, original, strict=True))
        )
    return type(parsed) is type(original) and bool(parsed == original)


def assert_json_round_trip(view: dict[str, Any]) -> None:
    """The compact and pretty texts parse back to the same value (and key order)."""
    for text in (compact_json(view), pretty_json(view)):
        text.encode("utf-8")  # always valid UTF-8
        assert same_json(json.loads(text), view)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_names_validate_or_round_trip(name: str) -> None:
    out = build_and_view(body(name=name))
    if isinstance(out, ImgapiError):
        assert out.code == "ValidationFailed"
        assert [(e.field, e.code) for e in out.errors] == [("name", "Invalid")]
        assert out.message == "invalid image data: name"
        assert js_len(name) > 1024 or NAME_RE.fullmatch(name) is None
    else:
        assert out["name"] == name
        assert js_len(name) <= 1024 and NAME_RE.fullmatch(name) is not None
        assert_json_round_trip(out)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_versions_validate_or_round_trip(version: str) -> None:
    out = build_and_view(body(version=version))
    if isinstance(out, ImgapiError):
        assert [(e.field, e.code) for e in out.errors] == [("version", "Invalid")]
        assert js_len(version) > 512 or VERSION_RE.fullmatch(version) is None
    else:
        assert out["version"] == version
        assert_json_round_trip(out)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(texts, near_description_limit))
@example("d" * 10240)
@example("d" * 10239 + "😀")
@example("😀" * 5120)
@example("😀" * 5121)
def test_descriptions_validate_or_round_trip(description: str) -> None:
    out = build_and_view(body(description=description))
    too_long = js_len(description) > 10240
    assert isinstance(out, ImgapiError) is too_long, js_len(description)
    if isinstance(out, ImgapiError):
        assert [(e.field, e.code) for e in out.errors] == [("description", "Invalid")]
    elif description:
        assert out["description"] == description
        assert_json_round_trip(out)
    else:
        assert "description" not in out


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(tags_objects)
def test_tags_validate_or_round_trip(tags: dict[str, Any]) -> None:
    out = build_and_view(body(tags=tags))
    if isinstance(out, ImgapiError):
        assert [(e.field, e.code) for e in out.errors] == [("tags", "Invalid")]
        assert js_len(compact_json(tags)) > 102400
        return
    assert out["tags"] == tags
    assert list(out["tags"]) == list(tags)
    assert_json_round_trip(out)
    search = tags_search_array(tags)
    assert len(search) == len(tags)
    for (key, value), entry in zip(tags.items(), search, strict=True):
        assert entry.startswith(key + "=")
        text = entry[len(key) + 1 :]
        if isinstance(value, str):
            assert text == (value if js_len(value) <= 100 else "")
        elif isinstance(value, bool):
            assert text == ("true" if value else "false")
        elif isinstance(value, (int, float)):
            assert js_number(text) == float(value)
        else:
            assert text == ""


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(any_text, st.text(alphabet=any_char, max_size=3000), max_size=60))
def test_big_tags_near_limit(tags: dict[str, str]) -> None:
    out = build_and_view(body(tags=tags))
    too_big = js_len(compact_json(tags)) > 102400
    assert isinstance(out, ImgapiError) is too_big


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(any_text, json_values, min_size=1, max_size=4))
def test_arbitrary_body_keys_never_crash(extra: dict[str, Any]) -> None:
    b = {**body(), **extra}
    try:
        rec = build_record(b, DC, for_import=False, new_uuid=NEW)
    except ImgapiError as exc:
        assert exc.code in ("InvalidParameter", "ValidationFailed")
        assert exc.errors
        fields = ", ".join(e.field for e in exc.errors)
        if exc.code == "ValidationFailed":
            assert exc.message == f"invalid image data: {fields}"
        return
    view = serialize_image(rec, DC, include_channels=True, include_admin_fields=True)
    assert_json_round_trip(view)


def _valid_field_value(field: str, value: Any) -> bool:
    """The per-field rule of the manifest, restated plainly (the oracle for the property below)."""
    if field == "name":
        return isinstance(value, str) and js_len(value) <= 1024 and NAME_RE.fullmatch(value) is not None
    if field == "version":  # a number stands for its JavaScript text (which has no length limit)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return VERSION_RE.fullmatch(js_string(value)) is not None
        return isinstance(value, str) and js_len(value) <= 512 and VERSION_RE.fullmatch(value) is not None
    if field == "v":  # JavaScript's Number(v): null, [], "" and "0" are 0
        n = js_number(value)
        return not math.isnan(n) and n >= 0
    if field == "public":  # a falsy value (JS: null, false, 0, "") on create: the default (false)
        falsy = value is None or value is False or value == "" or (type(value) in (int, float) and value == 0)
        return falsy or isinstance(value, bool) or value in ("true", "false")
    if field == "acl":
        items = [value] if isinstance(value, str) else value
        return isinstance(items, list) and all(isinstance(i, str) and UUID_RE.fullmatch(i) for i in items)
    if field == "users":
        return isinstance(value, list) and all(isinstance(u, dict) and list(u) == ["name"] for u in value)
    if field == "traits":
        values = value.values() if isinstance(value, dict) else value  # an array's keys are its indexes
        return isinstance(value, (dict, list)) and all(isinstance(t, (str, bool, list)) for t in values)
    if field == "tags":
        return isinstance(value, dict) and js_len(compact_json(value)) <= 102400
    if field == "error":
        return value is None or isinstance(value, (dict, list))
    raise AssertionError(field)


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FIELDS = ("name", "version", "v", "public", "acl", "users", "traits", "tags", "error")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        json_values,
        st.sampled_from(
            ["true", "false", "2", " 1 ", "-1", "1e3", 0, 0.0, "", OWNER, [OWNER], [{"name": "a"}]]
        ),
    )
)
def test_any_field_value_validates_cleanly(value: Any) -> None:
    """Each field accepts exactly the values its rule allows; a refusal names that field only."""
    for field in FIELDS:
        out = build_and_view(body(**{field: value}), DC)
        if _valid_field_value(field, value):
            assert not isinstance(out, ImgapiError), (
                field,
                value,
                out.body() if isinstance(out, ImgapiError) else "",
            )
        else:
            assert isinstance(out, ImgapiError), (field, value)
            assert out.code == "ValidationFailed"
            # one error per bad entry, every one naming the field
            assert out.errors and {e.field for e in out.errors} == {field}, (field, value, out.body())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_requirements_value_validates_cleanly(value: Any) -> None:
    reqs = value if isinstance(value, dict) else {"min_platform": value, "brand": value, "bootrom": value}
    out = build_and_view(body(requirements=reqs))
    if isinstance(out, ImgapiError):
        assert out.code == "ValidationFailed"
        for e in out.errors:
            assert e.field == "requirements" or e.field.startswith("requirements.") or e.field in reqs


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["name", "version", "tags", "description", "os", "acl", "x"]), json_values
    )
)
def test_updates_validate_or_apply(update: dict[str, Any]) -> None:
    rec = build_record(body(tags={"a": 1}), DC, for_import=False, new_uuid=NEW)
    try:
        new = apply_update(rec, update, DC, account=OWNER)
    except ImgapiError as exc:
        assert exc.code == "ValidationFailed"
        return
    assert validate_record(new, DC) == []
    for key, value in update.items():
        if value is None and key != "tags":
            assert key not in new or key == "acl"
        elif value is not None:
            assert new[key] == value or key == "acl"
    assert_json_round_trip(serialize_image(new, DC, include_channels=True, include_admin_fields=False))


#: Number(text) on texts of known value: (text, expected) with JavaScript's whitespace trimming.
_js_whitespace = st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\ufeff", "\u2028"])
_decimal = st.one_of(
    st.integers(-(10**15), 10**15).map(lambda i: (str(i), float(i))),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda f: (repr(f), f)),
    st.integers(0, 2**52).map(lambda i: (hex(i), float(i))),
)


@settings(max_examples=300)
@given(_js_whitespace, _decimal, _js_whitespace)
def test_js_number_of_numeric_text(before: str, number: tuple[str, float], after: str) -> None:
    text, value = number
    assert js_number(before + text + after) == value


@settings(max_examples=300)
@given(
    st.text(alphabet=st.sampled_from("abcdfghijklmnopqrsuvwyz!?#_~"), min_size=1, max_size=12),
    st.text(max_size=5),
)
def test_js_number_of_garbage_is_nan(word: str, rest: str) -> None:
    """Text starting with a letter that is no number (nor Infinity/0x/0b/0o prefix) is NaN."""
    assert math.isnan(js_number(word + rest))
    assert js_number("") == 0.0 and js_number("  ") == 0.0


@settings(max_examples=300)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_js_string_of_float_round_trips(x: float) -> None:
    text = js_string(x)
    assert float(text) == x
    assert js_number(text) == x
    assert not text.endswith(".0")


@settings(max_examples=100)
@given(json_values)
def test_truthy_matches_python_bool_except_containers(value: Any) -> None:
    if isinstance(value, (list, dict)):
        assert truthy(value)
    elif isinstance(value, float) and math.isnan(value):
        assert not truthy(value)
    else:
        assert truthy(value) is bool(value)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_text, max_size=4))
def test_channel_server_channels_round_trip(channels: list[str]) -> None:
    rec = build_record(body(public=True), PUBLIC_CH, for_import=False, new_uuid=NEW, channels=channels)
    assert validate_record(rec, PUBLIC_CH) == []
    view = serialize_image(rec, PUBLIC_CH, include_channels=True, include_admin_fields=False)
    if channels:
        assert view["channels"] == channels
    else:
        assert view["channels"] == []  # [] is truthy, shown as stored


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.text(alphabet=any_char, max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet=any_char, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(_json_values)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@example({"k": ["x", {"\udc00": 1}]})
@example({"a": 2**70, "b": "\ud800"})
@example({"a": 2**70})
def test_lone_surrogate_check_agrees_with_the_walk(value: Any) -> None:
    """The fast check (orjson refuses a surrogate) answers as the walk over every key and string."""
    assert has_lone_surrogate(value) == lone_surrogate_walk(value)
