"""gateway/http/query.py: query strings parsed as node's ``qs`` parses them (restify's query parser)."""

from __future__ import annotations

import pytest

from gateway.http.query import Query, QueryValue, js_truthy, not_a_boolean, parse_query
from imgapi_common.errors import ImgapiError


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=", {"a": ""}),
        ("a", {"a": ""}),
        ("a=1&a=2", {"a": ["1", "2"]}),
        ("a=&a=x", {"a": ["", "x"]}),
        ("a[]=1", {"a": ["1"]}),
        ("a[]=1&a[]=2", {"a": ["1", "2"]}),
        ("a[]=", {"a": [""]}),
        ("a[0]=x&a[1]=y", {"a": ["x", "y"]}),
        ("a[b]=1", {"a": {"b": "1"}}),
        ("a[b][c]=1", {"a": {"b": {"c": "1"}}}),
        ("a[21]=x", {"a": {"21": "x"}}),  # beyond qs's arrayLimit: an object key
        ("tag.role=db", {"tag.role": "db"}),
        ("a=b+c%20d", {"a": "b c d"}),
        ("a=%zz", {"a": "%zz"}),  # undecodable: kept as received
        ("a%5B%5D=1", {"a": ["1"]}),  # brackets may be escaped
        ("a=1&&b=2", {"a": "1", "b": "2"}),
        ("=x", {}),
        ("a=1=2", {"a": "1=2"}),
    ],
)
def test_parse_like_qs(raw: str, expected: dict[str, QueryValue]) -> None:
    assert parse_query(raw) == expected


def test_parameter_limit() -> None:
    assert len(parse_query("&".join(f"k{i}=v" for i in range(1500)))) == 1000


def test_text_is_javascript_string() -> None:
    q = Query("channel=dev&channel=staging&x[a]=1&e=&l[]=2")
    assert q.text("channel") == "dev,staging"
    assert q.text("x") == "[object Object]"
    assert q.text("e") == "" and q.text("missing") is None
    assert q.text("l") == "2"


def test_get_is_the_text_of_a_truthy_value() -> None:
    q = Query("action=&other=a&other=b&list[]=")
    assert q.get("action") is None and q.present("action")
    assert q.get("other") == "a,b"
    assert q.get("list") == ""  # [""] is truthy in JavaScript
    assert q.empty("action") and not q.empty("list") and not q.empty("missing")


def test_repeatable_and_prefixed() -> None:
    q = Query("billing_tag=a&billing_tag=&billing_tag=b&tag.k=1&tag.k=2&tag.e=")
    assert q.all("billing_tag") == ["a", "b"]
    assert q.prefixed("tag.") == {"k": "1,2", "e": ""}


@pytest.mark.parametrize("raw,value", [("b=true", True), ("b=false", False), ("", None)])
def test_boolean(raw: str, value: bool | None) -> None:
    assert Query(raw).boolean("b") is value


@pytest.mark.parametrize(
    "raw,shown", [("b=", ""), ("b=yes", "yes"), ("b=True", "True"), ("b=true&b=true", "true,true")]
)
def test_boolean_refusals(raw: str, shown: str) -> None:
    with pytest.raises(ImgapiError) as e:
        Query(raw).boolean("b")
    assert e.value.code == "InvalidParameter"
    assert e.value.message == f'invalid value for "b" param: "{shown}" is not a boolean'


@pytest.mark.parametrize(
    "raw,expected",
    [
        # a key given both plainly and with brackets: qs merges the two values
        ("a=1&a[]=2", {"a": ["1", "2"]}),
        ("a[]=1&a=2", {"a": ["1", "2"]}),
        ("a[]=1&a[]=2&a=3", {"a": ["1", "2", "3"]}),
        ("a=x&a[b]=1", {"a": ["x", {"b": "1"}]}),
        ("a=x&a=y&a[]=z", {"a": ["x", "y", "z"]}),
        ("a[b]=1&a=x", {"a": {"b": "1", "x": "true"}}),
        ("a[b]=1&a[c]=2", {"a": {"b": "1", "c": "2"}}),
        ("a[b]=1&a[b][c]=2", {"a": {"b": ["1", {"c": "2"}]}}),
        ("a[b][c]=1&a[b]=2", {"a": {"b": {"c": "1", "2": "true"}}}),
        ("a[b][c]=1&a[b][d]=2", {"a": {"b": {"c": "1", "d": "2"}}}),
        ("a[]=1&a[b]=2", {"a": {"0": "1", "b": "2"}}),
        ("a[]=1&a[]=2&a[b]=3", {"a": {"0": "1", "1": "2", "b": "3"}}),
        ("a[b]=1&a[]=2", {"a": {"b": "1", "0": "2"}}),
        ("a[b]=1&a[]=2&a[]=3", {"a": {"b": "1", "0": "2", "1": "3"}}),
        ("a[0]=x&a[1]=y&a[2]=z", {"a": ["x", "y", "z"]}),
    ],
)
def test_mixed_shapes_of_one_key_merge_like_qs(raw: str, expected: dict[str, QueryValue]) -> None:
    assert parse_query(raw) == expected


def test_merged_values_read_as_javascript_strings() -> None:
    q = Query("owner=a&owner[]=b&state[x]=1&state=active")
    assert q.text("owner") == "a,b"
    assert q.text("state") == "[object Object]"


# Cases found by mutation testing (scripts/mutation 'gateway.http.query*'): each pins a qs rule
# that no other test reached.


@pytest.mark.parametrize("raw", ["a=%FF", "a=%E2%82", "a=%C3%28x"])
def test_a_value_decodeURIComponent_refuses_is_kept_as_sent(raw: str) -> None:
    assert parse_query(raw) == {"a": raw[2:]}


def test_the_first_bracket_equals_ends_a_bracketed_key() -> None:
    # qs splits at the first "]=" when there is one, not at the first "=".
    assert parse_query("a[b=c]=d") == {"a": {"b=c": "d"}}
    assert parse_query("a[x]=1]=2") == {"a": {"x": "1]=2"}}


def test_an_empty_key_is_skipped_not_the_end() -> None:
    assert parse_query("=x&a=1") == {"a": "1"}


def test_brackets_beyond_the_depth_become_one_key() -> None:
    assert parse_query("a[b][c][d][e][f][g][h]=x") == {
        "a": {"b": {"c": {"d": {"e": {"f": {"[g][h]": "x"}}}}}}
    }


def test_a_list_under_a_key() -> None:
    assert parse_query("a[b][]=1") == {"a": {"b": ["1"]}}


def test_the_array_index_limit_is_inclusive() -> None:
    assert parse_query("a[20]=x") == {"a": ["x"]}
    assert parse_query("a[21]=x") == {"a": {"21": "x"}}


def test_not_a_boolean_names_the_field_with_code_invalid() -> None:
    body = not_a_boolean("public", "yes").body()
    assert body["errors"] == [{"field": "public", "code": "Invalid"}]


def test_js_truthy() -> None:
    values: list[QueryValue | None] = ["x", "", None, [], {}]
    assert [js_truthy(v) for v in values] == [True, False, False, True, True]


def test_all_of_a_single_value_is_that_value() -> None:
    assert Query("billing_tag=abc").all("billing_tag") == ["abc"]
    assert Query("billing_tag=a&billing_tag=&billing_tag=b").all("billing_tag") == ["a", "b"]
