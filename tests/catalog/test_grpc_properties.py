"""Property-based tests through gRPC: odd names/versions/descriptions/tags/filters (unicode, NUL,
quotes, very long) give a clean ValidationFailed/InvalidParameter or a faithful round-trip, never an
INTERNAL/UNKNOWN/UNAVAILABLE status; failed updates change nothing. Plus the regressions found."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imgapi.v1 import catalog_pb2

from imgapi_common.errors import ImgapiError
from imgapi_common.jsvalues import js_key_order
from tests.catalog.conftest import LUKE, V2, VADER, Catalog, caller, catalog_dc, manifest
from tests.catalog.grpc_support import (
    create_active,
    errs,
    get_view,
    list_images,
    list_uuids,
    new_uuid,
    snapshot,
    view_of,
)

__all__ = ["catalog_dc"]

F = TypeVar("F", bound=Callable[..., Any])
NAME_RE = re.compile(r"[A-Za-z0-9._/ -]+")
VERSION_RE = re.compile(r"[A-Za-z0-9._/+-]+")
CLEAN_422 = ("ValidationFailed", "InvalidParameter")

_odd_chars = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        ".",
        "_",
        "/",
        " ",
        "-",
        "+",
        "\x00",
        '"',
        "'",
        "\\",
        "é",
        "中",
        "😀",
        "\n",
        "\u202e",
        "\uffff",
    ]
)
odd_text = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=30),
    st.text(_odd_chars, max_size=30),
    st.builds(lambda c, n: c * n, _odd_chars, st.integers(500, 11000)),
)
small_text = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=12), st.text(_odd_chars, max_size=8)
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | small_text
    | st.builds(lambda c, n: c * n, _odd_chars, st.integers(90, 110)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(small_text, children, max_size=3),
    max_leaves=6,
)
tags_strategy = st.dictionaries(small_text, json_values, max_size=4)


def js_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def js_numbers(v: Any) -> Any:
    """A JSON value with every number as a double: JavaScript's view (1.0 == 1, 5.76e16 == 57612746799714910)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, list):
        return [js_numbers(x) for x in v]
    return {k: js_numbers(x) for k, x in v.items()}


def expected_errors(name: str, version: str, description: str) -> list[str]:
    out = []
    if not (len(name) <= 1024 and NAME_RE.fullmatch(name)):
        out.append("name")
    if not (len(version) <= 512 and VERSION_RE.fullmatch(version)):
        out.append("version")
    if description and js_len(description) > 10240:
        out.append("description")
    return out


def examples(cat: Catalog, sqlite: int, postgres: int) -> Callable[[F], F]:
    chosen: Callable[[F], F] = settings(
        max_examples=sqlite if cat.backend == "sqlite" else postgres,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    return chosen


def raw_call(cat: Catalog, method: str, **fields: Any) -> Any:
    """Call and map a non-IMGAPI failure (a crash) to a test failure with the gRPC status."""
    try:
        return cat.call(method, **fields)
    except ImgapiError as e:
        assert e.http_status < 500, f"{method} crashed: {e.body()}"
        raise


def test_create_property(catalog_dc: Catalog) -> None:
    owner = new_uuid()

    @examples(catalog_dc, sqlite=150, postgres=40)
    @given(name=odd_text, version=odd_text, description=odd_text, tags=tags_strategy)
    def run(name: str, version: str, description: str, tags: dict[str, Any]) -> None:
        m = manifest(owner=owner, name=name, version=version, description=description, tags=tags)
        expected = expected_errors(name, version, description)
        try:
            r = raw_call(catalog_dc, "CreateImage", caller=caller(), view=V2, manifest_json=json.dumps(m))
        except ImgapiError as e:
            assert e.code == "ValidationFailed", e.body()
            assert [f.field for f in e.errors] == expected
            assert e.message == "invalid image data: " + ", ".join(expected)
            return
        assert expected == []
        out = view_of(r)
        assert (out["name"], out["version"]) == (name, version)
        assert out.get("description") == (description or None)
        # (JavaScript object key order: integer-like keys first, ascending)
        assert js_numbers(out["tags"]) == js_numbers(tags)
        assert list(out["tags"]) == list(js_key_order(list(tags.items())))
        assert get_view(catalog_dc, out["uuid"]) == out
        # the exact name and version filters find it
        assert out["uuid"] in list_uuids(catalog_dc, owner=owner, name=name, version=version, state="all")
        for k, v in tags.items():
            if isinstance(v, str) and js_len(v) <= 100:
                assert out["uuid"] in list_uuids(catalog_dc, owner=owner, state="all", tags={k: v})
            # "KEY=" matches only an empty search value: "", a long string, null, an object, an array
            empty = (
                v is None
                or isinstance(v, (list, dict))
                or (isinstance(v, str) and (v == "" or js_len(v) > 100))
            )
            found = out["uuid"] in list_uuids(catalog_dc, owner=owner, state="all", tags={k: ""})
            assert found == empty, (k, v)

    run()


def test_update_property(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest(description="orig", tags={"a": 1}))
    uuid = img["uuid"]
    fields = st.sampled_from(["name", "version", "description", "tags", "homepage", "os", "acl", "bogus"])

    @examples(catalog_dc, sqlite=120, postgres=30)
    @given(
        body=st.dictionaries(fields, st.one_of(odd_text, json_values, tags_strategy), min_size=1, max_size=3)
    )
    def run(body: dict[str, Any]) -> None:
        before = snapshot(catalog_dc, uuid)
        try:
            r = raw_call(
                catalog_dc, "UpdateImage", caller=caller(), view=V2, uuid=uuid, update_json=json.dumps(body)
            )
        except ImgapiError as e:
            assert e.code in CLEAN_422 and e.http_status == 422, e.body()
            assert snapshot(catalog_dc, uuid) == before
            return
        out = view_of(r)
        for k, v in body.items():
            if v is None and k != "tags":
                assert k not in out
            elif k == "tags" and v is not None:
                assert js_numbers(out["tags"]) == js_numbers(v)
            elif k in ("name", "version", "os"):
                assert out[k] == v
        assert get_view(catalog_dc, uuid) == out

    run()


def _search_text(v: Any) -> str:
    """A tag value's search form: strings as is (up to 100 units), numbers/booleans as JS prints them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    return v if isinstance(v, str) and js_len(v) <= 100 else ""


_STATES = ("active", "disabled", "unactivated", "creating", "failed", "all")
_SHOWN_STATES = {
    "active": {"active"},
    "disabled": {"disabled"},
    "unactivated": {"unactivated", "creating", "failed"},
    "creating": {"creating"},
    "failed": {"failed"},
}
_letters = st.text(alphabet="abcdefghijklmnopqrsuvwyz", min_size=1, max_size=8)


def _optional(s: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), s)


def _expected_error(kw: dict[str, str], marker_kind: str) -> tuple[str, str] | None:
    """(code, field) of the first failing check in ListImages' processing order, or None."""
    limit = kw["limit"]
    if limit and not limit.isdigit():
        return ("InvalidParameter", "state")  # NaN or negative: the reference names "state"
    if kw["state"] and kw["state"] not in _STATES:
        return ("InvalidParameter", "state")
    if kw["public"] not in ("", "true", "false"):
        return ("InvalidParameter", "public")
    if kw["sort"] and kw["sort"].split(".")[0] != "published_at":
        return ("InvalidParameter", "sort")
    if marker_kind == "missing":
        return ("ResourceNotFound", "")
    if marker_kind == "garbage":
        return ("InvalidParameter", "marker")
    return None


def test_list_filters_property(catalog_dc: Catalog) -> None:
    """Random parameter combinations: the error the processing order names, or results that each
    satisfy every filter, in sort order, within the limit."""
    tagged = create_active(catalog_dc, manifest(tags={"k\x00": "v\x00", "q": '"'}))

    @examples(catalog_dc, sqlite=150, postgres=40)
    @given(
        name=_optional(st.one_of(odd_text, st.sampled_from(["~img", "~-", "~a"]))),
        version=_optional(st.one_of(small_text, st.just("1.0.0"))),
        os=_optional(st.one_of(small_text, st.sampled_from(["smartos", "linux"]))),
        type=_optional(st.one_of(small_text, st.sampled_from(["zone-dataset", "!zone-dataset", "!zvol"]))),
        owner=_optional(st.one_of(small_text, st.sampled_from([VADER, LUKE]))),
        account=_optional(st.one_of(small_text, st.sampled_from([VADER, LUKE]))),
        tags=st.dictionaries(st.one_of(small_text, st.sampled_from(["q", "num"])), small_text, max_size=2),
        billing=st.lists(small_text, max_size=2),
        limit=_optional(st.one_of(st.integers(0, 5000).map(str), st.integers(-5, -1).map(str), _letters)),
        marker=st.sampled_from(["", "existing", "missing", "garbage"]),
        sort=_optional(
            st.sampled_from(
                ["published_at", "published_at.asc", "published_at.desc", "published_at.x", "name", "foo.asc"]
            )
        ),
        state=_optional(st.one_of(st.sampled_from(_STATES), _letters)),
        public=_optional(st.one_of(st.sampled_from(["true", "false"]), _letters)),
    )
    def run(**kw: Any) -> None:
        account, billing, marker_kind = kw.pop("account"), kw.pop("billing"), kw.pop("marker")
        marker = {"": "", "existing": tagged["uuid"], "missing": new_uuid(), "garbage": "zz-not-a-date"}
        kw["marker"] = marker[marker_kind]
        want_error = _expected_error(kw, marker_kind)
        try:
            got = list_images(catalog_dc, account, billing_tags=billing, **kw)
        except ImgapiError as e:
            assert e.http_status < 500, e.body()
            assert want_error is not None, e.body()
            assert e.code == want_error[0], (want_error, e.body())
            if want_error[1]:
                assert [f.field for f in e.errors] == [want_error[1]], e.body()
            return
        assert want_error is None, (want_error, kw)
        limit = int(kw["limit"]) if kw["limit"] else 0
        assert len(got) <= (1000 if limit == 0 else min(limit, 1000))
        descending = kw["sort"] not in ("", "published_at", "published_at.asc")
        keys = [i.get("published_at") or "1970-01-01T00:00:00.000Z" for i in got]
        assert keys == sorted(keys, reverse=descending)
        shown = _SHOWN_STATES.get(kw["state"] or "active")
        for img in got:
            if kw["name"]:
                want = kw["name"]
                assert want[1:] in img["name"] if want.startswith("~") else img["name"] == want
            if kw["version"]:
                assert img["version"] == kw["version"]
            if kw["os"]:
                assert img["os"] == kw["os"]
            if kw["type"]:
                t = kw["type"]
                assert img["type"] != t[1:] if t.startswith("!") else img["type"] == t
            if kw["owner"]:
                assert img["owner"] == kw["owner"]
            if kw["public"]:
                assert img["public"] == (kw["public"] == "true")
            for k, v in kw["tags"].items():
                assert k in img.get("tags", {}) and _search_text(img["tags"][k]) == v
            # An empty billing_tag filters nothing (like every other empty ListImages filter).
            assert {b for b in billing if b} <= set(img.get("billing_tags", []))
            if shown is not None:
                assert img["state"] in shown
            if account:
                visible = img["public"] and img["state"] in ("active", "disabled")
                assert img["owner"] == account or visible or account in img.get("acl", [])

    run()
    assert list_uuids(catalog_dc, tags={"k\x00": "v\x00"}) == [tagged["uuid"]]


@pytest.mark.parametrize(
    "body",
    [
        '{"tags": {"n": NaN}}',
        '{"tags": {"n": Infinity}}',
        '{"tags": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"tags": {"t": ' + "[" * 100 + "]" * 100 + "}}",
        '{"name": "x"',
        "\x00",
    ],
)
def test_unstorable_json_is_invalid_content(catalog_dc: Catalog, body: str) -> None:
    img = catalog_dc.create(manifest())
    before = snapshot(catalog_dc, img["uuid"])
    for method, field, extra in (
        ("CreateImage", "manifest_json", {}),
        ("UpdateImage", "update_json", {"uuid": img["uuid"]}),
        ("AddImageAcl", "acl_json", {"uuid": img["uuid"]}),
        ("ChannelAddImage", "body_json", {"uuid": img["uuid"]}),
    ):
        e = catalog_dc.error(method, caller=caller(), **{field: body}, **extra)
        assert (e.code, e.http_status) == ("InvalidContent", 400), (method, e.body())
    e = catalog_dc.error("AdminImportImage", caller=caller(), uuid=new_uuid(), manifest_json=body)
    assert (e.code, e.http_status) == ("InvalidContent", 400)
    assert snapshot(catalog_dc, img["uuid"]) == before


def test_lone_surrogates_validate_like_any_value_and_are_never_stored(catalog_dc: Catalog) -> None:
    """A lone surrogate escape is valid JSON: validation sees it (as the reference does); only a
    record that would store one is refused (400), and texts echoing one carry U+FFFD."""
    img = catalog_dc.create(manifest())
    before = snapshot(catalog_dc, img["uuid"])
    e = catalog_dc.error("CreateImage", caller=caller(), manifest_json=json.dumps(manifest(name="a\ud800")))
    assert (e.code, [(f.field, f.code) for f in e.errors]) == ("ValidationFailed", [("name", "Invalid")])
    e = catalog_dc.error("CreateImage", caller=caller(), manifest_json=json.dumps(manifest(**{"x\udc00": 1})))
    assert (e.code, e.message) == ("InvalidParameter", 'invalid extra parameters: "x\ufffd"')
    for body in (manifest(description="d\ud800"), manifest(tags={"\udfff": 1})):
        e = catalog_dc.error("CreateImage", caller=caller(), manifest_json=json.dumps(body))
        assert (e.code, e.http_status) == ("InvalidContent", 400)
        u = new_uuid()
        e = catalog_dc.error(
            "AdminImportImage", caller=caller(), uuid=u, manifest_json=json.dumps({**body, "uuid": u, "v": 2})
        )
        assert (e.code, e.http_status) == ("InvalidContent", 400)
    e = catalog_dc.error(
        "UpdateImage", caller=caller(), uuid=img["uuid"], update_json='{"description": "\\ud800"}'
    )
    assert (e.code, e.http_status) == ("InvalidContent", 400)
    e = catalog_dc.error("AddImageAcl", caller=caller(), uuid=img["uuid"], acl_json='["\\ud800"]')
    assert (e.code, e.body()["message"]) == (
        "InvalidParameter",
        'invalid image "acl" (item 0 is not a UUID): \ufffd',
    )
    assert snapshot(catalog_dc, img["uuid"]) == before


def test_nul_and_escape_characters_round_trip(catalog_dc: Catalog) -> None:
    """PostgreSQL text cannot hold NUL: tags/billing tags with NUL still store, round-trip and match."""
    tags = {"k\x00ey": "v\x00al", "\uffff": "\uffff0", "x": "\x00"}
    img = create_active(
        catalog_dc, manifest(tags=tags, billing_tags=["b\x00", "\uffff0"], description="d\x00\"'")
    )
    u = img["uuid"]
    assert img["tags"] == tags and img["billing_tags"] == ["b\x00", "\uffff0"]
    assert img["description"] == "d\x00\"'"
    assert list_uuids(catalog_dc, tags={"k\x00ey": "v\x00al"}) == [u]
    assert list_uuids(catalog_dc, tags={"\uffff": "\uffff0"}) == [u]
    assert list_uuids(catalog_dc, tags={"\uffff": "\x00"}) == []  # the escaping is injective
    assert list_uuids(catalog_dc, tags={"x": "\x00"}) == [u]
    assert list_uuids(catalog_dc, billing_tags=["b\x00", "\uffff0"]) == [u]
    assert list_uuids(catalog_dc, billing_tags=["\uffff\uffff0"]) == []
    for uuid_like in ("a\x00b", u + "\x00", ""):
        for method in ("GetImage", "DeleteImage", "CloneImage"):
            e = catalog_dc.error(
                method, caller=caller(LUKE if method == "CloneImage" else ""), uuid=uuid_like
            )
            assert (e.code, e.http_status) == ("ResourceNotFound", 404)
    e = catalog_dc.error("CreateImage", caller=caller(), manifest_json=json.dumps(manifest(origin="a\x00")))
    assert e.code == "OriginDoesNotExist"
    assert list_uuids(catalog_dc, "\x00", owner="\x00", name="~\x00", os="\x00", type="!\x00") == []


def test_long_values(catalog_dc: Catalog) -> None:
    e = catalog_dc.error(
        "CreateImage", caller=caller(), manifest_json=json.dumps(manifest(tags={"k": "x" * 102400}))
    )
    assert (e.code, [f.field for f in e.errors]) == ("ValidationFailed", ["tags"])
    # 10240 UTF-16 units: astral characters count twice
    img = catalog_dc.create(manifest(description="😀" * 5120))
    assert len(img["description"]) == 5120
    e = catalog_dc.error(
        "CreateImage", caller=caller(), manifest_json=json.dumps(manifest(description="😀" * 5121))
    )
    assert [f.field for f in e.errors] == ["description"]
    # 4 MiB: past the limit by far, still within the catalog's message size: a clean 422 naming it
    big = "x" * (4 * 1024 * 1024)
    e = catalog_dc.error("CreateImage", caller=caller(), manifest_json=json.dumps(manifest(description=big)))
    assert (e.code, e.http_status, errs(e)) == ("ValidationFailed", 422, [("description", "Invalid")])


def test_watch_changes_never_crashes_on_odd_records(catalog_dc: Catalog) -> None:
    create_active(catalog_dc, manifest(tags={"\x00": "\uffff"}, description="😀\x00"))
    evs = list(catalog_dc.stub.WatchChanges(catalog_pb2.WatchChangesRequest(replay_only=True)))
    assert evs and all(json.loads(e.image.view_json) for e in evs if e.HasField("image"))


def test_huge_error_lists_stay_clean(catalog_dc: Catalog) -> None:
    """Errors echoing huge inputs must still travel as a clean 422 (gRPC caps trailers at 8 KiB)."""
    reqs = {f"k{i}" + "z" * 50: 1 for i in range(2000)}
    body = manifest(requirements=reqs, os="o" * 11000)
    e = catalog_dc.error("CreateImage", caller=caller(), manifest_json=json.dumps(body))
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert e.errors and e.errors[0].field == "os"
    extra = manifest(**{f"extra{i}" + "y" * 40: i for i in range(3000)})
    e = catalog_dc.error("CreateImage", caller=caller(), manifest_json=json.dumps(extra))
    assert (e.code, e.http_status) == ("InvalidParameter", 422)
    assert e.errors and e.errors[0].field.startswith("extra0")
    img = catalog_dc.create(manifest())
    before = snapshot(catalog_dc, img["uuid"])
    e = catalog_dc.error(
        "UpdateImage", caller=caller(), uuid=img["uuid"], update_json=json.dumps({"name": "\u4e2d" * 20000})
    )
    assert (e.code, [f.field for f in e.errors]) == ("ValidationFailed", ["name"])
    assert snapshot(catalog_dc, img["uuid"]) == before
