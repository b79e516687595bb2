"""The API-view serializer and JSON renderings."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.serialize import (
    compact_json,
    etag_of,
    format_timestamp,
    pretty_json,
    serialize_image,
)
from tests.components import FIXTURES

DC = DomainConfig()
PUBLIC = DomainConfig(mode="public")
PRIVATE = DomainConfig(mode="private")
PUBLIC_CH = DomainConfig(mode="public", channels=("dev", "staging", "release"))

OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
OTHER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
UUID = "5ce1b1a0-4d7a-4d3e-9c5f-3b2a1f0e9d8c"

ORDER = [
    "v",
    "uuid",
    "owner",
    "name",
    "version",
    "state",
    "disabled",
    "public",
    "published_at",
    "type",
    "os",
    "files",
    "acl",
    "description",
    "homepage",
    "eula",
    "icon",
    "urn",
    "requirements",
    "users",
    "generate_passwords",
    "inherited_directories",
    "origin",
    "nic_driver",
    "disk_driver",
    "cpu_type",
    "image_size",
    "tags",
    "billing_tags",
    "traits",
    "error",
    "channels",
]


def full_record() -> dict[str, Any]:
    """A stored record with every field set, keys deliberately in a scrambled order."""
    return {
        "channels": ["dev"],
        "error": {"message": "boom"},
        "traits": {"t": True},
        "billing_tags": ["promo"],
        "tags": {"role": "os"},
        "tags_search": ["role=os"],
        "image_size": 10240,
        "cpu_type": "host",
        "disk_driver": "virtio",
        "nic_driver": "virtio",
        "origin": OTHER,
        "inherited_directories": ["/opt"],
        "generate_passwords": True,
        "users": [{"name": "root"}],
        "requirements": {"brand": "bhyve", "bootrom": "uefi"},
        "urn": "sdc:sdc:x:1",
        "icon": {
            "sha1": "i" * 40,
            "size": 4,
            "contentMD5": "m==",
            "contentType": "image/png",
            "mtime": "2013-08-22T20:41:09.978Z",
            "stor": "local",
            "blob_id": "icon-blob",
        },
        "eula": "https://example.com/eula",
        "homepage": "https://example.com",
        "description": "desc",
        "acl": [OWNER],
        "files": [
            {
                "stor": "local",
                "blob_id": "b1",
                "mtime": "2013-08-22T20:41:08.978Z",
                "contentMD5": "m==",
                "digest": "sha256:d",
                "uncompressedDigest": "sha256:u",
                "dataset_guid": "123",
                "compression": "gzip",
                "size": 42,
                "sha1": "a" * 40,
            }
        ],
        "os": "linux",
        "type": "zvol",
        "published_at": "2013-08-22T20:41:08.978Z",
        "public": True,
        "disabled": False,
        "state": "failed",
        "version": "1.0",
        "name": "full",
        "owner": OWNER,
        "uuid": UUID,
        "v": 2,
        "activated": True,
        "expires_at": "2030-01-01T00:00:00.000Z",
        "objectclass": "sdcimage",
    }


def view(
    rec: dict[str, Any], cfg: DomainConfig = DC, *, channels: bool = True, admin: bool = False
) -> dict[str, Any]:
    return serialize_image(rec, cfg, include_channels=channels, include_admin_fields=admin)


def minimal(**overrides: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "uuid": UUID,
        "v": 2,
        "owner": OWNER,
        "name": "m",
        "version": "1",
        "type": "zone-dataset",
        "os": "smartos",
        "public": False,
        "disabled": False,
        "activated": False,
        "state": "unactivated",
        "acl": [],
    }
    rec.update(overrides)
    return rec


# --- key order and presence -----------------------------------------------------------------------


def test_full_key_order() -> None:
    out = view(full_record(), admin=True)
    assert list(out) == ORDER


def test_full_values() -> None:
    out = view(full_record())
    assert out["icon"] is True
    assert out["files"] == [{"sha1": "a" * 40, "size": 42, "compression": "gzip", "dataset_guid": "123"}]
    assert list(out["files"][0]) == ["sha1", "size", "compression", "dataset_guid"]
    assert out["requirements"] == {"brand": "bhyve", "bootrom": "uefi"}
    assert out["error"] == {"message": "boom"}


def test_file_stor_only_with_admin_fields() -> None:
    out = view(full_record(), admin=True)
    assert out["files"][0] == {
        "sha1": "a" * 40,
        "size": 42,
        "compression": "gzip",
        "dataset_guid": "123",
        "stor": "local",
    }
    assert list(out["files"][0]) == ["sha1", "size", "compression", "dataset_guid", "stor"]


def test_internal_keys_never_emitted() -> None:
    text = compact_json(view(full_record(), admin=True))
    for internal in (
        "activated",
        "expires_at",
        "tags_search",
        "objectclass",
        "contentMD5",
        "mtime",
        "blob_id",
        "digest",
        "uncompressedDigest",
        "contentType",
    ):
        assert f'"{internal}"' not in text, internal


def test_minimal_view() -> None:
    assert view(minimal()) == {
        "v": 2,
        "uuid": UUID,
        "owner": OWNER,
        "name": "m",
        "version": "1",
        "state": "unactivated",
        "disabled": False,
        "public": False,
        "type": "zone-dataset",
        "os": "smartos",
        "files": [],
    }


def test_v_always_a_number() -> None:
    assert view(minimal(v="2"))["v"] == 2
    assert isinstance(view(minimal(v="2"))["v"], int)
    assert view(minimal(v=1))["v"] == 1
    assert compact_json(view(minimal(v=2.0))).startswith('{"v":2,')


@pytest.mark.parametrize(
    ("stored", "shown"), [(True, True), (False, False), ("true", True), ("false", False)]
)
def test_disabled_and_public_booleans(stored: Any, shown: bool) -> None:
    out = view(minimal(disabled=stored, public=stored))
    assert out["disabled"] is shown and out["public"] is shown


def test_disabled_public_default_false() -> None:
    rec = minimal()
    del rec["disabled"], rec["public"]
    out = view(rec)
    assert out["disabled"] is False and out["public"] is False


def test_published_at_as_stored() -> None:
    assert view(minimal(published_at="2018-01-04T11:35:37Z"))["published_at"] == "2018-01-04T11:35:37Z"
    assert "published_at" not in view(minimal())


def test_null_type_and_os_omitted() -> None:
    out = view(minimal(type="null", os="null", state="creating"))
    assert "type" not in out and "os" not in out


def test_acl_rules() -> None:
    assert "acl" not in view(minimal(acl=[]))
    assert "acl" not in view({k: v for k, v in minimal().items() if k != "acl"})
    assert view(minimal(acl=OTHER))["acl"] == [OTHER]
    assert view(minimal(acl=[OTHER, OWNER]))["acl"] == [OTHER, OWNER]


@pytest.mark.parametrize(
    "key", ["description", "homepage", "eula", "urn", "origin", "nic_driver", "cpu_type"]
)
def test_truthy_string_fields(key: str) -> None:
    assert key not in view(minimal(**{key: ""}))
    assert key not in view(minimal(**{key: None}))
    assert view(minimal(**{key: "x"}))[key] == "x"


def test_icon_only_when_present() -> None:
    assert "icon" not in view(minimal())
    assert "icon" not in view(minimal(icon=None))
    assert view(minimal(icon={"sha1": "x"}))["icon"] is True


def test_requirements_users_if_truthy() -> None:
    assert view(minimal(requirements={}))["requirements"] == {}  # {} is truthy
    assert "requirements" not in view(minimal(requirements=None))
    assert view(minimal(users=[]))["users"] == []
    assert "users" not in view(minimal(users=None))


@pytest.mark.parametrize(
    ("stored", "shown"),
    [(True, True), ("true", True), ("false", False), (False, None), (None, None), (0, None), ("", None)],
)
def test_generate_passwords_quirk(stored: Any, shown: bool | None) -> None:
    out = view(minimal(generate_passwords=stored))
    if shown is None:
        assert "generate_passwords" not in out
    else:
        assert out["generate_passwords"] is shown


def test_inherited_directories_and_tags_shown_when_empty() -> None:
    assert view(minimal(inherited_directories=[]))["inherited_directories"] == []
    assert view(minimal(tags={}))["tags"] == {}
    assert "tags" not in view(minimal(tags=None))


def test_image_size_if_truthy() -> None:
    assert view(minimal(image_size=16384))["image_size"] == 16384
    assert "image_size" not in view(minimal(image_size=0))
    assert "image_size" not in view(minimal(image_size=math.nan))


@pytest.mark.parametrize("cfg", [DC, PRIVATE])
def test_billing_tags_and_traits_shown_outside_public_mode(cfg: DomainConfig) -> None:
    out = view(minimal(billing_tags=["a"], traits={"k": "v"}), cfg)
    assert out["billing_tags"] == ["a"] and out["traits"] == {"k": "v"}
    assert view(minimal(billing_tags="a"), cfg)["billing_tags"] == ["a"]
    assert "billing_tags" not in view(minimal(billing_tags=[]), cfg)
    assert "traits" not in view(minimal(traits={}), cfg)
    assert "billing_tags" not in view(minimal(billing_tags=None), cfg)


def test_billing_tags_and_traits_hidden_in_public_mode() -> None:
    out = view(minimal(public=True, billing_tags=["a"], traits={"k": "v"}), PUBLIC)
    assert "billing_tags" not in out and "traits" not in out


def test_error_only_when_failed() -> None:
    assert view(minimal(state="failed", error={"message": "x"}))["error"] == {"message": "x"}
    assert "error" not in view(minimal(state="creating", error={"message": "x"}))
    assert "error" not in view(minimal(state="failed", error=None))


def test_channels_only_when_requested_and_present() -> None:
    rec = minimal(public=True, channels=["dev", "staging"])
    assert view(rec, PUBLIC_CH)["channels"] == ["dev", "staging"]
    assert "channels" not in view(rec, PUBLIC_CH, channels=False)
    assert "channels" not in view(minimal(public=True), PUBLIC_CH)
    assert list(view(full_record()))[-1] == "channels"


def test_values_emitted_as_stored_with_key_order() -> None:
    reqs = {"z": 1, "a": {"y": 2, "b": 3}}
    out = view(minimal(requirements=reqs, tags={"z": 1, "a": 2}))
    assert list(out["requirements"]) == ["z", "a"]
    assert list(out["requirements"]["a"]) == ["y", "b"]
    assert list(out["tags"]) == ["z", "a"]


def test_view_shares_nothing_with_record() -> None:
    rec = minimal(tags={"a": [1]}, acl=[OTHER], requirements={"networks": []})
    out = view(rec)
    out["tags"]["a"].append(2)
    out["acl"].append("x")
    out["requirements"]["networks"].append("x")
    assert rec["tags"] == {"a": [1]} and rec["acl"] == [OTHER] and rec["requirements"] == {"networks": []}


def test_serializer_is_deterministic_across_key_order() -> None:
    rec = full_record()
    reordered = dict(reversed(list(rec.items())))
    assert compact_json(view(rec)) == compact_json(view(reordered))
    assert etag_of(view(rec)) == etag_of(view(reordered))


# --- fixtures -------------------------------------------------------------------------------------


def test_dc_fixture_views() -> None:
    records = json.loads((FIXTURES / "dc-test-images.json").read_text())
    father = next(r for r in records if r["name"] == "i-am-your-father")
    out = view(father, admin=True)
    assert out["acl"] == ["91ba0e64-2547-11e2-a972-df579e5fddb3"]
    assert out["files"] == [
        {
            "sha1": "25592745c0b06822e0a4c9e9945e67322bdfe619",
            "size": 42,
            "compression": "gzip",
            "stor": "local",
        }
    ]
    assert "urn" not in out
    assert "objectclass" not in out and "activated" not in out
    base = next(r for r in records if r["name"] == "base" and r["version"] == "1.8.1")
    assert view(base)["urn"] == "sdc:sdc:base:1.8.1"
    assert list(view(base)) == [k for k in ORDER if k in {*view(base)}]


def test_public_fixture_views() -> None:
    records = json.loads((FIXTURES / "public-test-images.json").read_text())
    multi = next(r for r in records if r["name"] == "inmultichan")
    out = view(multi, PUBLIC_CH)
    assert out["icon"] is True
    assert out["channels"] == ["dev", "staging", "release"]
    assert out["files"] == [
        {"sha1": "046c168df2244d3a13985f042a50e479fe56455e", "size": 4, "compression": "none"}
    ]
    assert "channels" not in view(multi, PUBLIC_CH, channels=False)


# --- JSON text ------------------------------------------------------------------------------------


def test_compact_json_basics() -> None:
    obj = {"a": [1, 2.0, 1.5, True, None, "x"], "é": {"k": "ü😀"}, "e": [], "o": {}}
    assert compact_json(obj) == '{"a":[1,2,1.5,true,null,"x"],"é":{"k":"ü😀"},"e":[],"o":{}}'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (0.1, "0.1"),
        (math.nan, "null"),
        (math.inf, "null"),
        (-math.inf, "null"),
        (12345678901234567890, "12345678901234567000"),  # the double JavaScript holds
        ('a"b\\c\n\t\x00\x1f\x7f/\u2028', '"a\\"b\\\\c\\n\\t\\u0000\\u001f\x7f/\u2028"'),
        ("\ud800", '"\\ud800"'),
        ("x\udc00y", '"x\\udc00y"'),
    ],
)
def test_compact_json_values(value: Any, text: str) -> None:
    assert compact_json(value) == text


def test_compact_json_non_string_keys() -> None:
    assert compact_json({1: "a", None: "b", 1.5: "c"}) == '{"1":"a","null":"b","1.5":"c"}'


def test_compact_json_rejects_unknown_types() -> None:
    with pytest.raises(TypeError):
        compact_json({"a": object()})


def test_pretty_json_matches_json_stringify_indent_2() -> None:
    obj = {"a": [1, {"b": []}, {}], "c": "é", "d": {"e": None}}
    assert pretty_json(obj) == json.dumps(obj, indent=2, ensure_ascii=False)
    assert pretty_json({"x": 1.0}) == '{\n  "x": 1\n}'
    assert pretty_json([]) == "[]"
    assert pretty_json({}) == "{}"


def test_etag_of() -> None:
    v = view(minimal())
    assert etag_of(v) == hashlib.sha1(compact_json(v).encode("utf-8")).hexdigest()
    assert len(etag_of(v)) == 40 and etag_of(v) == etag_of(v).lower()
    assert etag_of(v) != etag_of(view(minimal(name="other")))
    # a view with a lone surrogate still hashes
    assert len(etag_of({"tags": {"k": "\ud800"}})) == 40


# --- timestamps -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (datetime(2013, 1, 8, 20, 21, 17, 932000, tzinfo=UTC), "2013-01-08T20:21:17.932Z"),
        (datetime(2013, 1, 8, 20, 21, 17, 932999, tzinfo=UTC), "2013-01-08T20:21:17.932Z"),
        (datetime(2013, 1, 8, 20, 21, 17, tzinfo=UTC), "2013-01-08T20:21:17.000Z"),
        (datetime(2013, 1, 8, 20, 21, 17, 5000), "2013-01-08T20:21:17.005Z"),  # naive = UTC
        (
            datetime(2013, 1, 8, 22, 21, 17, 100000, tzinfo=timezone(timedelta(hours=2))),
            "2013-01-08T20:21:17.100Z",
        ),
        (datetime(999, 2, 3, 4, 5, 6, tzinfo=UTC), "0999-02-03T04:05:06.000Z"),
    ],
)
def test_format_timestamp(dt: datetime, text: str) -> None:
    assert format_timestamp(dt) == text
