"""CreateImage through a real gRPC channel: body checks, record building, validation (both backends)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.conftest import (
    LUKE,
    SDC,
    V2,
    VADER,
    Catalog,
    caller,
    catalog_channels,
    catalog_dc,
    catalog_private,
    catalog_public,
    database,
    manifest,
    running_catalog,
)
from tests.catalog.grpc_support import V1, activate, errs, get_view, new_uuid, snapshot

__all__ = ["catalog_channels", "catalog_dc", "catalog_private", "catalog_public"]

SERIAL_ORDER = [
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


def create_error(cat: Catalog, body: Any, account: str = "", channel: str = "") -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return cat.error("CreateImage", caller=caller(account, channel), view=V2, manifest_json=text)


def assert_in_serializer_order(view: dict[str, Any]) -> None:
    keys = list(view)
    assert keys == sorted(keys, key=SERIAL_ORDER.index), keys


# --- success ----------------------------------------------------------------------------------


def test_minimal_create_defaults(catalog_dc: Catalog) -> None:
    m = manifest()
    resp = catalog_dc.call("CreateImage", caller=caller(), view=V2, manifest_json=json.dumps(m))
    img = json.loads(resp.image.view_json)
    assert list(img) == [
        "v",
        "uuid",
        "owner",
        "name",
        "version",
        "state",
        "disabled",
        "public",
        "type",
        "os",
        "files",
    ]
    assert img["v"] == 2 and img["state"] == "unactivated"
    assert img["disabled"] is False and img["public"] is False and img["files"] == []
    assert resp.image.revision == 1 and resp.image.activated is False
    # etag = SHA-1 of the compact view text
    import hashlib

    assert resp.image.etag == hashlib.sha1(resp.image.view_json.encode()).hexdigest()
    assert resp.image.view_json == json.dumps(img, separators=(",", ":"), ensure_ascii=False)
    # uuid is a fresh v4
    assert img["uuid"][14] == "4"
    assert get_view(catalog_dc, img["uuid"]) == img


def test_full_manifest_round_trips_in_serializer_order(catalog_dc: Catalog) -> None:
    m = manifest(
        description="Node.js Image with MongoDB ✓",
        homepage="https://example.com/x",
        eula="HTTP://example.com/eula",
        public=True,
        disabled=True,
        acl=[LUKE],
        requirements={
            "networks": [{"name": "net0", "description": "public"}],
            "min_ram": 256,
            "max_ram": 1024,
            "min_platform": {"7.0": "20130122T122401Z"},
            "brand": "bhyve",
            "bootrom": "uefi",
            "ssh_key": True,
        },
        users=[{"name": "root"}, {"name": "admin"}],
        generate_passwords=True,
        inherited_directories=["/opt/x"],
        tags={"z": 1, "a": "b", "n": None, "o": {"k": [1, 2.5]}, "t": True},
        billing_tags=["xxllpromo", "b"],
        traits={"ssd": True, "x": "y", "arr": [1, "a"]},
    )
    img = catalog_dc.create(m)
    assert_in_serializer_order(img)
    for k, v in m.items():
        assert img[k] == v, k
    # key order inside objects is kept
    assert list(img["tags"]) == ["z", "a", "n", "o", "t"]
    assert list(img["requirements"]) == list(m["requirements"])
    assert img["state"] == "unactivated" and img["disabled"] is True


def test_owner_from_account(catalog_dc: Catalog) -> None:
    m = manifest()
    del m["owner"]
    img = catalog_dc.create(m, account=LUKE)
    assert img["owner"] == LUKE
    # the same owner as the account is fine
    assert catalog_dc.create(manifest(owner=LUKE), account=LUKE)["owner"] == LUKE


def test_normalizations(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(
        manifest(v="2", acl=LUKE, billing_tags="promo", generate_passwords=False, tags={}, public="true")
    )
    assert img["v"] == 2
    assert img["acl"] == [LUKE]
    assert img["billing_tags"] == ["promo"]
    assert "generate_passwords" not in img  # stored false is omitted (quirk)
    assert img["tags"] == {}
    assert img["public"] is True
    img2 = catalog_dc.create(manifest(generate_passwords="true", inherited_directories=[], acl=[]))
    assert img2["generate_passwords"] is True
    assert img2["inherited_directories"] == []
    assert "acl" not in img2


def test_body_files_state_channels_ignored(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(
        manifest(files=[{"sha1": "x", "size": 1, "compression": "gzip"}], description="", icon=False)
    )
    assert img["files"] == [] and "description" not in img and "icon" not in img


def test_zvol_fields(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(
        manifest(
            type="zvol",
            os="linux",
            nic_driver="virtio",
            disk_driver="virtio",
            cpu_type="qemu64",
            image_size="16384",
        )
    )
    assert img["image_size"] == 16384
    assert [k for k in img if k in ("nic_driver", "disk_driver", "cpu_type", "image_size")] == [
        "nic_driver",
        "disk_driver",
        "cpu_type",
        "image_size",
    ]
    # empty-string drivers pass (must only be strings) and are not shown
    img = catalog_dc.create(
        manifest(type="zvol", os="linux", nic_driver="", disk_driver="", cpu_type="", image_size=10)
    )
    assert "nic_driver" not in img and img["image_size"] == 10


def test_origin_must_exist(catalog_dc: Catalog) -> None:
    missing = new_uuid()
    e = create_error(catalog_dc, manifest(origin=missing))
    assert (e.code, e.http_status) == ("OriginDoesNotExist", 422)
    assert missing in e.message
    base = catalog_dc.create(manifest())  # unactivated origins count (any state/owner)
    img = catalog_dc.create(manifest(origin=base["uuid"], owner=LUKE))
    assert img["origin"] == base["uuid"]


# --- request-level errors, in precedence order ---------------------------------------------------


@pytest.mark.parametrize("body", ["", "[]", "42", "null", '"x"', "true"])
def test_missing_body(catalog_dc: Catalog, body: str) -> None:
    e = create_error(catalog_dc, body)
    assert (e.code, e.http_status, e.message) == ("ValidationFailed", 422, "missing request body")
    assert errs(e) == [("body", "MissingParameter")]


def test_bad_json_is_invalid_content(catalog_dc: Catalog) -> None:
    e = create_error(catalog_dc, "{nope")
    assert (e.code, e.http_status) == ("InvalidContent", 400)


def test_account_not_uuid(catalog_dc: Catalog) -> None:
    e = create_error(catalog_dc, manifest(), account="nobody")
    assert (e.code, e.http_status) == ("InvalidParameter", 422)
    assert errs(e) == [("account", "Invalid")]
    assert e.message == 'invalid "account": not a UUID: "nobody"'


def test_owner_account_mismatch(catalog_dc: Catalog) -> None:
    e = create_error(catalog_dc, manifest(owner=VADER), account=LUKE)
    assert (e.code, e.http_status) == ("InvalidParameter", 422)
    assert errs(e) == [("owner", "Invalid")]
    assert e.message == f'invalid owner: given owner, "{VADER}", does not match account, "{LUKE}"'


@pytest.mark.parametrize("state", ["active", None, "unactivated"])
def test_state_in_body_not_allowed(catalog_dc: Catalog, state: Any) -> None:
    e = create_error(catalog_dc, manifest(state=state, name="bad!name"))
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert e.body()["errors"] == [
        {"field": "state", "code": "NotAllowed", "message": "Parameter cannot be set"}
    ]
    assert '"state"' in e.message


def test_extra_parameters(catalog_dc: Catalog) -> None:
    body = manifest()
    body.update(
        {
            "uuid": new_uuid(),
            "foo": 1,
            "published_at": "2012-10-11T14:40:57.936Z",
            "urn": "x",
            "activated": True,
            "expires_at": "x",
            "nic_driver": "virtio",  # not a zvol
        }
    )
    e = create_error(catalog_dc, body)
    assert (e.code, e.http_status) == ("InvalidParameter", 422)
    keys = ["uuid", "foo", "published_at", "urn", "activated", "expires_at", "nic_driver"]
    assert errs(e) == [(k, "Invalid") for k in keys]
    assert e.message == "invalid extra parameters: " + ", ".join(f'"{k}"' for k in keys)


def test_extra_parameters_win_over_validation(catalog_dc: Catalog) -> None:
    e = create_error(catalog_dc, manifest(name="bad!", bogus=1))
    assert e.code == "InvalidParameter" and errs(e) == [("bogus", "Invalid")]


def test_required_fields_in_order(catalog_dc: Catalog) -> None:
    e = create_error(catalog_dc, {})
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert errs(e) == [(f, "MissingParameter") for f in ("owner", "name", "version", "type", "os")]
    assert e.message == "invalid image data: owner, name, version, type, os"


def test_zvol_required_fields(catalog_dc: Catalog) -> None:
    e = create_error(catalog_dc, manifest(type="zvol"))
    assert errs(e) == [
        ("nic_driver", "MissingParameter"),
        ("disk_driver", "MissingParameter"),
        ("cpu_type", "MissingParameter"),
        ("image_size", "Invalid"),  # absent image_size becomes NaN
    ]


LONG = "x" * 20000

#: (manifest overrides, expected errors in order)
FIELD_CASES: list[tuple[dict[str, Any], list[tuple[str, str]]]] = [
    ({"v": -1}, [("v", "Invalid")]),
    ({"v": "two"}, [("v", "Invalid")]),
    ({"v": {}}, [("v", "Invalid")]),
    ({"owner": "not-a-uuid"}, [("owner", "Invalid")]),
    ({"owner": VADER.upper()}, [("owner", "Invalid")]),
    ({"name": "n" * 1025}, [("name", "Invalid")]),
    ({"name": "bad!name"}, [("name", "Invalid")]),
    ({"name": ""}, [("name", "Invalid")]),
    ({"name": 42}, [("name", "Invalid")]),
    ({"name": None}, [("name", "Invalid")]),
    ({"name": "naïve"}, [("name", "Invalid")]),
    ({"version": "v" * 513}, [("version", "Invalid")]),
    ({"version": "1 0"}, [("version", "Invalid")]),
    ({"version": True}, [("version", "Invalid")]),
    ({"description": "d" * 10241}, [("description", "Invalid")]),
    ({"description": True}, [("description", "Invalid")]),
    ({"homepage": "ftp://example.com"}, [("homepage", "Invalid")]),
    ({"homepage": "example.com"}, [("homepage", "Invalid")]),
    ({"homepage": "https://e.com/" + "p" * 1024}, [("homepage", "Invalid")]),
    ({"eula": "javascript:alert(1)"}, [("eula", "Invalid")]),
    ({"eula": ["https://x"]}, [("eula", "Invalid")]),
    ({"disabled": "yes"}, [("disabled", "Invalid")]),
    ({"public": "maybe"}, [("public", "Invalid")]),
    ({"public": 1}, [("public", "Invalid")]),
    ({"type": "beos"}, [("type", "Invalid")]),
    ({"type": "null"}, [("type", "Invalid")]),
    ({"os": "beos"}, [("os", "Invalid")]),
    ({"os": "null"}, [("os", "Invalid")]),
    ({"error": "boom"}, [("error", "Invalid")]),
    ({"icon": True}, [("icon", "Invalid")]),
    ({"icon": "yes"}, [("icon", "Invalid")]),
    ({"acl": "nope"}, [("acl", "Invalid")]),
    ({"acl": [LUKE, "nope", "x"]}, [("acl", "Invalid")]),
    ({"acl": {"a": LUKE}}, [("acl", "Invalid")]),
    ({"requirements": None}, [("requirements", "Invalid")]),
    ({"requirements": "x"}, [("0", "Invalid")]),
    ({"requirements": {"foo": 1, "bar": 2}}, [("foo", "Invalid"), ("bar", "Invalid")]),
    ({"requirements": {"networks": [{"name": "n"}]}}, [("requirements.networks", "Invalid")]),
    ({"requirements": {"networks": "net0"}}, [("requirements.networks", "Invalid")]),
    ({"requirements": {"brand": 5}}, [("requirements.brand", "Invalid")]),
    ({"requirements": {"ssh_key": "true"}}, [("requirements.ssh_key", "Invalid")]),
    ({"requirements": {"min_ram": 1.5}}, [("requirements.min_ram", "Invalid")]),
    ({"requirements": {"min_ram": "512"}}, [("requirements.min_ram", "Invalid")]),
    ({"requirements": {"min_ram": 1024, "max_ram": 512}}, [("requirements.max_ram", "Invalid")]),
    ({"requirements": {"min_platform": {}}}, [("requirements.min_platform", "Invalid")]),
    ({"requirements": {"min_platform": "20130122T122401Z"}}, [("requirements.min_platform", "Invalid")]),
    (
        {"requirements": {"max_platform": {"7.0": "20111301T000000Z", "6.5": "2013013T122401Z"}}},
        [("requirements.max_platform", "Invalid"), ("requirements.max_platform", "Invalid")],
    ),
    (
        {"requirements": {"min_platform": {"7.0": "20130132T000000Z"}}},
        [("requirements.min_platform", "Invalid")],
    ),
    (
        {"requirements": {"min_platform": {"7.0": "20130101T240000Z"}}},
        [("requirements.min_platform", "Invalid")],
    ),
    ({"requirements": {"bootrom": "bios"}}, [("requirements.bootrom", "MissingParameter")]),
    ({"requirements": {"bootrom": "bios", "brand": "kvm"}}, [("requirements.bootrom", "Invalid")]),
    ({"requirements": {"bootrom": "pxe", "brand": "bhyve"}}, [("requirements.bootrom", "Invalid")]),
    ({"users": "root"}, [("users", "Invalid")]),
    ({"users": [{"name": "a", "uid": 1}]}, [("users", "Invalid")]),
    ({"users": [{"login": "a"}]}, [("users", "Invalid")]),
    ({"billing_tags": ["b" * 129]}, [("billing_tags", "Invalid")]),
    ({"billing_tags": [1]}, [("billing_tags", "Invalid")]),
    ({"billing_tags": {"a": 1}}, [("billing_tags", "Invalid")]),
    ({"traits": None}, [("traits", "Invalid")]),
    ({"traits": {"a": 1}}, [("traits", "Invalid")]),
    ({"traits": {"a": None}}, [("traits", "Invalid")]),
    ({"traits": [1]}, [("traits", "Invalid")]),
    ({"tags": None}, [("tags", "Invalid")]),
    ({"tags": ["a"]}, [("tags", "Invalid")]),
    ({"tags": "a=b"}, [("tags", "Invalid")]),
    ({"tags": {"big": "t" * 102400}}, [("tags", "Invalid")]),
    ({"generate_passwords": "nope"}, [("generate_passwords", "Invalid")]),
    ({"generate_passwords": None}, [("generate_passwords", "Invalid")]),
    ({"inherited_directories": "/opt"}, [("inherited_directories", "Invalid")]),
    ({"inherited_directories": [1]}, [("inherited_directories", "Invalid")]),
    ({"type": "lx-dataset", "inherited_directories": []}, [("inherited_directories", "Invalid")]),
    (
        {"type": "zvol", "nic_driver": None, "disk_driver": 1, "cpu_type": "x", "image_size": 1},
        [
            ("nic_driver", "Invalid"),
            ("disk_driver", "Invalid"),
        ],
    ),
    (
        {"type": "zvol", "nic_driver": "a", "disk_driver": "b", "cpu_type": "c", "image_size": "big"},
        [("image_size", "Invalid")],
    ),
    (
        {"type": "zvol", "nic_driver": "a", "disk_driver": "b", "cpu_type": "c", "image_size": 1.5},
        [("image_size", "Invalid")],
    ),
    # several problems: pass 1 (required order) then pass 2 (optional order)
    (
        {"tags": [], "name": "bad!", "os": "beos", "homepage": "ftp://x", "acl": "x", "v": "x"},
        [
            ("v", "Invalid"),
            ("name", "Invalid"),
            ("os", "Invalid"),
            ("homepage", "Invalid"),
            ("acl", "Invalid"),
            ("tags", "Invalid"),
        ],
    ),
]


@pytest.mark.parametrize(("over", "expected"), FIELD_CASES, ids=[str(i) for i in range(len(FIELD_CASES))])
def test_field_validation(catalog_dc: Catalog, over: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    e = create_error(catalog_dc, manifest(**over))
    assert (e.code, e.http_status) == ("ValidationFailed", 422), e.body()
    assert errs(e) == expected
    assert e.message == "invalid image data: " + ", ".join(f for f, _ in expected)
    assert set(e.body()) == {"code", "message", "errors"}


VALID_EDGE_CASES: list[dict[str, Any]] = [
    {"name": "n" * 1024},
    {"name": "a-Z_0.9/ x"},
    {"version": "v" * 512},
    {"version": "1.0.0+build/7_a-b"},
    {"description": "d" * 10240},
    {"homepage": "HTTPS://example.com/" + "p" * 1000},
    {"v": "2"},
    {"v": 1},
    {"v": 0},
    {"disabled": "false"},
    {"public": "false"},
    {"requirements": {"min_ram": 0, "ssh_key": False, "brand": "bhyve", "bootrom": "bios"}},
    {"requirements": {"min_ram": -5, "max_ram": 1024}},
    {"requirements": {}},
    {"requirements": {"max_platform": {"7.0": "20121231T235959Z"}}},
    {"error": None},
    {"error": {"message": "x"}},
    {"traits": {"a": [None, 1]}},
    {"traits": {}},
    {"tags": {"k": "t" * 102000}},
    {"billing_tags": []},
    {"billing_tags": ["b" * 128]},
    {"users": []},
    {"acl": []},
]


@pytest.mark.parametrize("over", VALID_EDGE_CASES, ids=[str(i) for i in range(len(VALID_EDGE_CASES))])
def test_valid_edge_cases(catalog_dc: Catalog, over: dict[str, Any]) -> None:
    img = catalog_dc.create(manifest(**over))
    assert img["state"] == "unactivated"
    if "name" in over:
        assert img["name"] == over["name"]


# --- modes and channels ----------------------------------------------------------------------


def test_public_mode_requires_public(catalog_public: Catalog) -> None:
    e = create_error(catalog_public, manifest())
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert errs(e) == [("public", "Invalid")]
    assert "public" in e.message
    e = create_error(catalog_public, manifest(public=False))
    assert errs(e) == [("public", "Invalid")]
    img = catalog_public.create(manifest(public=True, billing_tags=["b"], traits={"t": True}))
    # billing_tags and traits are never emitted by a public server
    assert "billing_tags" not in img and "traits" not in img
    assert "channels" not in img


def test_private_mode_forbids_public(catalog_private: Catalog) -> None:
    e = create_error(catalog_private, manifest(public=True))
    assert errs(e) == [("public", "Invalid")]
    img = catalog_private.create(manifest(billing_tags=["b"], traits={"t": True}))
    assert img["public"] is False and img["billing_tags"] == ["b"] and img["traits"] == {"t": True}


def test_traits_empty_object_omitted(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest(traits={}, billing_tags=[]))
    assert "traits" not in img and "billing_tags" not in img


def test_channels_on_channel_server(catalog_channels: Catalog) -> None:
    m = manifest(public=True, channels=["release", "bogus"])
    img = catalog_channels.create(m)
    assert img["channels"] == ["dev"]  # default channel; body value discarded
    img = catalog_channels.create(manifest(public=True), channel="staging")
    assert img["channels"] == ["staging"]
    # the v1 view never shows channels
    r = catalog_channels.call("GetImage", caller=caller(channel="staging"), view=V1, uuid=img["uuid"])
    assert "channels" not in json.loads(r.image.view_json)


@pytest.mark.parametrize("channel", ["bogus", "*"])
def test_unknown_write_channel(catalog_channels: Catalog, channel: str) -> None:
    e = create_error(catalog_channels, manifest(public=True, name="bad!"), channel=channel)
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert errs(e) == [("channel", "Invalid")]
    assert e.message == f"unknown channel: {channel}"


def test_channels_ignored_without_channel_config(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest(channels=["dev"]), channel="whatever")
    assert "channels" not in img


def test_channel_precedes_body_checks_and_no_default(tmp_path: Path) -> None:
    with (
        database("sqlite", tmp_path) as url,
        running_catalog(
            url,
            "sqlite",
            mode="public",
            channels=[{"name": "a", "description": "A"}, {"name": "b", "description": "B"}],
        ) as cat,
    ):
        e = create_error(cat, "")
        assert (e.code, e.http_status) == ("ValidationFailed", 422)
        assert errs(e) == [("channel", "MissingParameter")]
        assert e.message == "channel not specified and the server has no default channel"
        img = cat.create(manifest(public=True), channel="b")
        assert img["channels"] == ["b"]


# --- owner registry (dc mode) ------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def catalog_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    tmp = tmp_path_factory.mktemp("registry")
    reg = tmp / "accounts.txt"
    reg.write_text(f"# known accounts\n{VADER}\n{LUKE}\n{SDC}\n")
    with (
        database(request.param, tmp) as url,
        running_catalog(url, request.param, mode="dc", admin_uuid=SDC, account_registry_file=reg) as cat,
    ):
        yield cat


def test_owner_does_not_exist(catalog_registry: Catalog) -> None:
    ghost = new_uuid()
    e = create_error(catalog_registry, manifest(owner=ghost, origin=new_uuid()))
    assert (e.code, e.http_status) == ("OwnerDoesNotExist", 422)
    assert ghost in e.message
    # a malformed owner skips the lookup and is reported by validation
    e = create_error(catalog_registry, manifest(owner="bogus"))
    assert e.code == "ValidationFailed" and errs(e) == [("owner", "Invalid")]
    assert catalog_registry.create(manifest(owner=LUKE))["owner"] == LUKE


def test_owner_does_not_exist_on_update(catalog_registry: Catalog) -> None:
    img = catalog_registry.create(manifest())
    before = snapshot(catalog_registry, img["uuid"])
    e = catalog_registry.error(
        "UpdateImage",
        caller=caller(),
        view=V2,
        uuid=img["uuid"],
        update_json=json.dumps({"owner": new_uuid()}),
    )
    assert (e.code, e.http_status) == ("OwnerDoesNotExist", 422)
    assert snapshot(catalog_registry, img["uuid"]) == before


def test_created_image_activates(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    act = activate(catalog_dc, img["uuid"])
    assert act["state"] == "active"
