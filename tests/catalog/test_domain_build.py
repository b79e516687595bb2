"""CreateImage / AdminImportImage bodies: check_create_body, build_record, the v1 upgrade."""

from __future__ import annotations

import copy
import json
import math
import uuid as uuidlib
from typing import Any

import pytest

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.records import build_record, check_create_body, tags_search_array
from catalog_service.domain.serialize import serialize_image
from catalog_service.domain.upgrade import upgrade_dataset_manifest
from catalog_service.domain.validation import validate_record
from imgapi_common.errors import FieldError, ImgapiError
from tests.components import FIXTURES

DC = DomainConfig()
PUBLIC = DomainConfig(mode="public")
PRIVATE = DomainConfig(mode="private")
PUBLIC_CH = DomainConfig(mode="public", channels=("dev", "staging"))

OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
OTHER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
UUID = "1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc"
NEW = "5ce1b1a0-4d7a-4d3e-9c5f-3b2a1f0e9d8c"


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


def create(b: dict[str, Any], cfg: DomainConfig = DC) -> dict[str, Any]:
    return build_record(b, cfg, for_import=False, new_uuid=NEW)


def import_(b: dict[str, Any], cfg: DomainConfig = DC) -> dict[str, Any]:
    return build_record(b, cfg, for_import=True)


def raises(fn: Any, *args: Any, **kwargs: Any) -> ImgapiError:
    with pytest.raises(ImgapiError) as info:
        fn(*args, **kwargs)
    return info.value


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


# --- check_create_body: the CreateImage body checks before building -------------------------------


@pytest.mark.parametrize("value", [None, [], [1], "x", 5, True])
def test_create_body_must_be_object(value: Any) -> None:
    err = raises(check_create_body, value, DC, account=None)
    assert err.code == "ValidationFailed"
    assert err.message == "missing request body"
    assert list(err.errors) == [FieldError("body", "MissingParameter")]


def test_create_body_account_must_be_uuid() -> None:
    err = raises(check_create_body, body(), DC, account="nope")
    assert err.code == "InvalidParameter"
    assert err.message == 'invalid "account": not a UUID: "nope"'
    assert list(err.errors) == [FieldError("account", "Invalid")]
    assert raises(check_create_body, body(), DC, account=OWNER.upper()).code == "InvalidParameter"


def test_create_body_owner_defaults_to_account() -> None:
    b = body()
    del b["owner"]
    out = check_create_body(b, DC, account=OTHER)
    assert out["owner"] == OTHER
    assert "owner" not in b  # input untouched
    assert check_create_body(body(owner=None), DC, account=OTHER)["owner"] == OTHER


def test_create_body_owner_must_match_account() -> None:
    err = raises(check_create_body, body(), DC, account=OTHER)
    assert err.code == "InvalidParameter"
    assert err.message == f'invalid owner: given owner, "{OWNER}", does not match account, "{OTHER}"'
    assert list(err.errors) == [FieldError("owner", "Invalid")]
    assert check_create_body(body(), DC, account=OWNER)["owner"] == OWNER


def test_create_body_owner_kept_without_account() -> None:
    assert check_create_body(body(owner="whatever"), DC, account=None)["owner"] == "whatever"


@pytest.mark.parametrize("state", ["active", None, "unactivated", ""])
def test_create_body_rejects_state(state: Any) -> None:
    err = raises(check_create_body, body(state=state), DC, account=None)
    assert err.code == "ValidationFailed"
    assert err.message == 'invalid image data: "state"'
    assert list(err.errors) == [FieldError("state", "NotAllowed", "Parameter cannot be set")]


def test_create_body_account_checked_before_state() -> None:
    assert raises(check_create_body, body(state="x"), DC, account="bad").code == "InvalidParameter"
    assert raises(check_create_body, body(state="x"), DC, account=OTHER).code == "InvalidParameter"


def test_create_body_v_default_and_channels_dropped() -> None:
    b = body(channels=["dev"])
    del b["v"]
    out = check_create_body(b, DC, account=None)
    assert out["v"] == 2
    assert "channels" not in out
    assert "channels" in b
    assert check_create_body(body(v=1), DC, account=None)["v"] == 1
    assert check_create_body(body(v="2"), DC, account=None)["v"] == "2"


# --- build_record: create ------------------------------------------------------------------------


def test_create_record_contents() -> None:
    rec = create(body())
    assert rec == {
        "uuid": NEW,
        "v": 2,
        "owner": OWNER,
        "name": "foo",
        "version": "1.0",
        "type": "zone-dataset",
        "os": "smartos",
        "public": False,
        "disabled": False,
        "activated": False,
        "state": "unactivated",
        "acl": [],
    }
    assert validate_record(rec, DC) == []


def test_create_generates_uuid4_without_new_uuid() -> None:
    rec = build_record(body(), DC, for_import=False)
    assert uuidlib.UUID(rec["uuid"]).version == 4
    assert rec["uuid"] == str(uuidlib.UUID(rec["uuid"]))


def test_create_does_not_mutate_body() -> None:
    b = body(tags={"a": [1]}, acl=OWNER, files=[], state="x", channels=["c"])
    snapshot = copy.deepcopy(b)
    rec = create(b)
    assert b == snapshot
    rec["tags"]["a"].append(2)
    assert b["tags"] == {"a": [1]}


def test_create_keeps_given_values() -> None:
    full = body(
        public=True,
        disabled="true",
        description="desc",
        homepage="https://example.com",
        eula="http://example.com/eula",
        acl=[OTHER],
        requirements={"min_ram": 512},
        users=[{"name": "root"}],
        traits={"a": "b"},
        tags={"role": "os", "n": 1.0},
        billing_tags=["promo"],
        generate_passwords="false",
        inherited_directories=["/opt"],
        error={"message": "x"},
    )
    rec = create(full)
    for key in (
        "public",
        "disabled",
        "description",
        "homepage",
        "eula",
        "acl",
        "requirements",
        "users",
        "traits",
        "tags",
        "billing_tags",
        "generate_passwords",
        "inherited_directories",
        "error",
    ):
        assert rec[key] == full[key], key
    assert rec["disabled"] == "true"  # stored as given
    assert rec["tags_search"] == ["role=os", "n=1"]
    assert rec["activated"] is False and rec["state"] == "unactivated"


@pytest.mark.parametrize("value", [None, 0, "", False])
def test_create_public_disabled_default_false(value: Any) -> None:
    rec = create(body(public=value, disabled=value))
    assert rec["public"] is False and rec["disabled"] is False


def test_create_falsy_optional_strings_and_icon_dropped() -> None:
    rec = create(body(description="", homepage=None, eula=0, icon=False))
    for key in ("description", "homepage", "eula", "icon"):
        assert key not in rec


def test_create_normalizes_acl_and_billing_tags() -> None:
    rec = create(body(acl=OTHER, billing_tags="promo"))
    assert rec["acl"] == [OTHER]
    assert rec["billing_tags"] == ["promo"]
    assert create(body())["acl"] == []


def test_create_drops_files_state_and_channels() -> None:
    rec = create(body(files=[{"sha1": "x"}], state="active", channels=["dev"]))
    assert "files" not in rec and rec["state"] == "unactivated" and "channels" not in rec


def test_create_truthy_icon_fails_validation() -> None:
    err = raises(create, body(icon=True))
    assert err.code == "ValidationFailed"
    assert err.message == "invalid image data: icon"
    assert [(e.field, e.code) for e in err.errors] == [("icon", "Invalid")]
    assert err.errors[0].message is not None and "contentMD5" in err.errors[0].message


def test_create_extra_parameters() -> None:
    b = {**body(), "uuid": NEW, "colour": "red"}
    err = raises(create, b)
    assert err.code == "InvalidParameter"
    assert err.message == 'invalid extra parameters: "uuid", "colour"'
    assert list(err.errors) == [FieldError("uuid", "Invalid"), FieldError("colour", "Invalid")]


@pytest.mark.parametrize(
    "key", ["uuid", "published_at", "urn", "activated", "expires_at", "tags_search", "icn", "creator_uuid"]
)
def test_create_rejects_non_create_keys(key: str) -> None:
    err = raises(create, body(**{key: "x"}))
    assert err.code == "InvalidParameter"
    assert list(err.errors) == [FieldError(key, "Invalid")]


def test_extra_parameters_in_body_order() -> None:
    b = {"zzz": 1, **body(), "aaa": 2, "expires_at": 3}
    err = raises(create, b)
    assert [e.field for e in err.errors] == ["zzz", "aaa", "expires_at"]
    assert err.message == 'invalid extra parameters: "zzz", "aaa", "expires_at"'


def test_extra_parameters_before_validation() -> None:
    err = raises(create, body(name="bad name!", colour="red"))
    assert err.code == "InvalidParameter"


@pytest.mark.parametrize("key", ["nic_driver", "disk_driver", "cpu_type", "image_size"])
def test_zvol_only_keys_are_extra_on_other_types(key: str) -> None:
    err = raises(create, body(**{key: "x"}))
    assert err.code == "InvalidParameter"
    assert list(err.errors) == [FieldError(key, "Invalid")]


def zvol_body(**overrides: Any) -> dict[str, Any]:
    return body(
        type="zvol", os="linux", nic_driver="virtio", disk_driver="virtio", cpu_type="host", **overrides
    )


def test_zvol_consumes_fields_and_converts_image_size() -> None:
    rec = create(zvol_body(image_size="16384"))
    assert rec["image_size"] == 16384 and isinstance(rec["image_size"], int)
    assert (rec["nic_driver"], rec["disk_driver"], rec["cpu_type"]) == ("virtio", "virtio", "host")
    assert create(zvol_body(image_size=2048.0))["image_size"] == 2048


def test_zvol_missing_image_size_is_nan_and_invalid() -> None:
    err = raises(create, zvol_body())
    assert err.code == "ValidationFailed"
    assert [(e.field, e.code) for e in err.errors] == [("image_size", "Invalid")]


def test_zvol_bad_image_size() -> None:
    bad: list[Any] = ["abc", "1.5", [1, 2], {}]
    for value in bad:
        err = raises(create, zvol_body(image_size=value))
        assert [(e.field, e.code) for e in err.errors] == [("image_size", "Invalid")]


def test_zvol_missing_drivers() -> None:
    b = body(type="zvol", image_size=1)
    err = raises(create, b)
    assert [(e.field, e.code) for e in err.errors] == [
        ("nic_driver", "MissingParameter"),
        ("disk_driver", "MissingParameter"),
        ("cpu_type", "MissingParameter"),
    ]


def test_create_validation_failure_lists_fields() -> None:
    err = raises(create, body(name="bad name!", os="beos"))
    assert err.code == "ValidationFailed"
    assert err.message == "invalid image data: name, os"


def test_create_missing_owner_reported_by_validation() -> None:
    b = body()
    del b["owner"]
    err = raises(create, b)
    assert [(e.field, e.code) for e in err.errors] == [("owner", "MissingParameter")]


def test_create_public_mode_requires_public() -> None:
    err = raises(create, body(), PUBLIC)
    assert err.code == "ValidationFailed" and err.message == "invalid image data: public"
    assert list(err.errors) == [
        FieldError("public", "Invalid", "private images are not allowed on a public Images API")
    ]
    assert create(body(public=True), PUBLIC)["public"] is True


def test_create_private_mode_rejects_public() -> None:
    assert raises(create, body(public=True), PRIVATE).message == "invalid image data: public"
    assert create(body(), PRIVATE)["public"] is False


@pytest.mark.parametrize("field", ["requirements", "traits", "tags"])
def test_create_null_objects_invalid(field: str) -> None:
    err = raises(create, body(**{field: None}))
    assert [(e.field, e.code) for e in err.errors] == [(field, "Invalid")]


def test_create_channels_on_channel_server() -> None:
    # the caller adds channels after build_record ...
    rec = create(body(public=True, channels=["bogus"]), PUBLIC_CH)
    assert "channels" not in rec
    # ... or passes them in
    rec = build_record(body(public=True), PUBLIC_CH, for_import=False, new_uuid=NEW, channels=["dev"])
    assert rec["channels"] == ["dev"]
    assert validate_record(rec, PUBLIC_CH) == []


def test_channels_passed_in_are_validated() -> None:
    err = raises(build_record, body(public=True), PUBLIC_CH, for_import=False, new_uuid=NEW, channels=[5])
    assert err.code == "ValidationFailed"
    assert list(err.errors) == [
        FieldError("channels", "Invalid", 'invalid image "channels": not an array of strings: [5]')
    ]


def test_import_with_v_is_not_upgraded() -> None:
    manifest = {**fixture("fauxnodejs-1.4.0.dsmanifest"), "v": 2}
    err = raises(import_, manifest)
    assert err.code == "InvalidParameter"
    assert "creator_uuid" in [e.field for e in err.errors]


def test_create_channels_argument_on_server_without_channels_is_invalid() -> None:
    err = raises(build_record, body(), DC, for_import=False, new_uuid=NEW, channels=["dev"])
    assert [(e.field, e.code) for e in err.errors] == [("channels", "Invalid")]


# --- build_record: import ------------------------------------------------------------------------


def test_import_requires_uuid() -> None:
    for b in (body(), body(uuid=""), body(uuid=None)):
        err = raises(import_, b)
        assert (err.code, err.message) == ("InvalidParameter", 'missing "uuid"')
        assert list(err.errors) == [FieldError("uuid", "MissingParameter")]


def test_import_rejects_non_string_published_at() -> None:
    for value in (20121102, True, ["2012-11-02T22:46:45.992Z"], {"a": 1}):
        err = raises(import_, body(uuid=UUID, published_at=value))
        assert (err.code, err.message) == ("InvalidParameter", 'invalid "published_at"')
        assert list(err.errors) == [FieldError("published_at", "Invalid")]


def test_import_uuid_checked_before_published_at() -> None:
    assert list(raises(import_, body(published_at=5)).errors) == [FieldError("uuid", "MissingParameter")]


def test_import_keeps_uuid_published_at_urn() -> None:
    rec = import_(body(uuid=UUID, published_at="2012-10-11T14:40:57.936Z", urn="sdc:sdc:foo:1.0"))
    assert rec["uuid"] == UUID
    assert rec["published_at"] == "2012-10-11T14:40:57.936Z"
    assert rec["urn"] == "sdc:sdc:foo:1.0"
    assert rec["state"] == "unactivated" and rec["activated"] is False


def test_import_falsy_published_at_and_urn_are_extra_parameters() -> None:
    # the reference consumes them only when truthy: a falsy one is left over
    err = raises(import_, body(uuid=UUID, published_at="", urn=None))
    assert err.code == "InvalidParameter"
    assert err.message == 'invalid extra parameters: "published_at", "urn"'
    assert [(e.field, e.code) for e in err.errors] == [("published_at", "Invalid"), ("urn", "Invalid")]


def test_import_published_at_format_validated() -> None:
    err = raises(import_, body(uuid=UUID, published_at="2012-10-11"))
    assert err.code == "ValidationFailed"
    assert [(e.field, e.code) for e in err.errors] == [("published_at", "Invalid")]


def test_import_does_not_default_v() -> None:
    b = body(uuid=UUID)
    del b["v"]
    err = raises(import_, b)
    assert err.code == "ValidationFailed"
    assert [(e.field, e.code) for e in err.errors] == [("v", "MissingParameter")]


def test_import_state_and_files_dropped_activated_is_extra() -> None:
    rec = import_(body(uuid=UUID, state="active", files=[{"sha1": "x", "size": 1, "compression": "gzip"}]))
    assert rec["state"] == "unactivated" and "files" not in rec
    err = raises(import_, body(uuid=UUID, activated=True))
    assert list(err.errors) == [FieldError("activated", "Invalid")]


def test_import_exported_manifest_round_trips() -> None:
    manifest = json.loads((FIXTURES / "xdc" / "c58161c0-2547-11e2-a75e-9fdca1940570.manifest").read_text())
    rec = import_(manifest)
    view = serialize_image(rec, DC, include_channels=True, include_admin_fields=False)
    for key in (
        "v",
        "uuid",
        "owner",
        "name",
        "version",
        "description",
        "published_at",
        "requirements",
        "tags",
    ):
        assert view[key] == manifest[key], key
    assert view["state"] == "unactivated" and view["files"] == []


def test_import_remote_manifest_with_icon_fails() -> None:
    manifest = json.loads((FIXTURES / "xdc" / "c58161c0-2547-11e2-a75e-9fdca1940570.manifest").read_text())
    manifest["icon"] = True
    err = raises(import_, manifest)
    assert err.code == "ValidationFailed" and err.message == "invalid image data: icon"


def test_import_imgmanifest_fixture() -> None:
    manifest = fixture("fauxnodejs-1.4.0.imgmanifest")
    rec = import_(manifest)
    view = serialize_image(rec, DC, include_channels=True, include_admin_fields=False)
    assert view == {
        "v": 2,
        "uuid": "1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc",
        "owner": "91ba0e64-2547-11e2-a972-df579e5fddb3",
        "name": "fauxnodejs",
        "version": "1.4.0",
        "state": "unactivated",
        "disabled": False,
        "public": True,
        "published_at": "2012-10-11T14:40:57.936Z",
        "type": "zone-dataset",
        "os": "smartos",
        "files": [],
        "description": "Node.js Image with MongoDB",
        "requirements": {"networks": [{"name": "net0", "description": "public"}]},
        "users": [{"name": "root"}, {"name": "admin"}, {"name": "mongodb"}],
        "generate_passwords": True,
        "inherited_directories": ["/opt/node_service"],
        "billing_tags": ["xxllpromo"],
    }
    # public mode hides billing_tags; private mode rejects the public image
    assert "billing_tags" not in serialize_image(
        rec, PUBLIC, include_channels=True, include_admin_fields=False
    )
    assert raises(import_, manifest, PRIVATE).message == "invalid image data: public"


def test_import_dsmanifest_nodejs() -> None:
    rec = import_(fixture("fauxnodejs-1.4.0.dsmanifest"))
    assert rec["owner"] == "91ba0e64-2547-11e2-a972-df579e5fddb3"
    assert rec["v"] == 2
    assert rec["public"] is True and rec["disabled"] is False
    assert rec["urn"] == "sdc:sdc:nodejs:1.4.0"
    assert rec["state"] == "unactivated" and "files" not in rec
    for key in ("creator_uuid", "vendor_uuid", "creator_name", "cloud_name", "platform_type", "created_at"):
        assert key not in rec
    view = serialize_image(rec, DC, include_channels=True, include_admin_fields=False)
    expected = serialize_image(
        import_(fixture("fauxnodejs-1.4.0.imgmanifest")),
        DC,
        include_channels=True,
        include_admin_fields=False,
    )
    expected.pop("billing_tags")
    expected["urn"] = "sdc:sdc:nodejs:1.4.0"
    assert view == expected
    assert list(view)[12:15] == ["description", "urn", "requirements"]


def test_import_dsmanifest_ubuntu_zvol() -> None:
    rec = import_(fixture("fauxubuntu.dsmanifest"))
    assert rec["image_size"] == 16384 and isinstance(rec["image_size"], int)
    assert rec["owner"] == "a979f956-12cb-4216-bf4c-ae73e6f14dde"
    assert (rec["nic_driver"], rec["disk_driver"], rec["cpu_type"]) == ("virtio", "virtio", "qemu64")
    assert rec["requirements"]["ssh_key"] is True
    assert rec["published_at"] == "2012-11-30T11:40:03.494Z"
    view = serialize_image(rec, DC, include_channels=True, include_admin_fields=False)
    assert view["image_size"] == 16384
    assert list(view)[-5:] == ["requirements", "nic_driver", "disk_driver", "cpu_type", "image_size"]


def test_import_dsmanifest_in_public_mode() -> None:
    assert import_(fixture("fauxubuntu.dsmanifest"), PUBLIC)["public"] is True


def test_import_dsmanifest_failed_upgrade_leaves_body() -> None:
    manifest = fixture("fauxnodejs-1.4.0.dsmanifest")
    manifest["owner"] = OWNER
    err = raises(import_, manifest)
    assert err.code == "InvalidParameter"
    assert [e.field for e in err.errors] == [
        "creator_uuid",
        "vendor_uuid",
        "creator_name",
        "platform_type",
        "cloud_name",
        "created_at",
        "updated_at",
    ]


def test_import_without_v_or_creator_is_not_upgraded() -> None:
    manifest = fixture("fauxnodejs-1.4.0.dsmanifest")
    del manifest["creator_uuid"]
    err = raises(import_, manifest)
    assert err.code == "InvalidParameter"
    assert "vendor_uuid" in [e.field for e in err.errors]


def test_create_never_upgrades() -> None:
    manifest = fixture("fauxnodejs-1.4.0.dsmanifest")
    err = raises(create, check_create_body(manifest, DC, account=None))
    assert err.code == "InvalidParameter"
    fields = [e.field for e in err.errors]
    assert "uuid" in fields and "creator_uuid" in fields and "urn" in fields


# --- upgrade_dataset_manifest (SDC 6 dataset manifests) ------------------------------------------


def dataset(**overrides: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "uuid": UUID,
        "name": "ds",
        "version": "1.0",
        "creator_uuid": OWNER,
        "vendor_uuid": OWNER,
        "creator_name": "sdc",
        "cloud_name": "sdc",
        "creator_admin": False,
        "owner_uuid": OWNER,
        "platform_type": "smartos",
        "created_at": "2012-10-11T14:40Z",
        "updated_at": "2012-10-11T14:40:57.936Z",
        "_url": "https://datasets.joyent.com/datasets",
        "files": [{"path": "x.zfs.bz2", "sha1": "a", "size": 1, "url": "https://x/x.zfs.bz2"}],
    }
    d.update(overrides)
    return d


def test_upgrade_owner_and_dropped_keys() -> None:
    m = upgrade_dataset_manifest(dataset())
    assert m["owner"] == OWNER and m["v"] == 2
    for key in (
        "creator_uuid",
        "vendor_uuid",
        "creator_name",
        "cloud_name",
        "creator_admin",
        "owner_uuid",
        "platform_type",
        "created_at",
        "updated_at",
        "_url",
        "restricted_to_uuid",
    ):
        assert key not in m, key


def test_upgrade_does_not_mutate() -> None:
    d = dataset()
    snapshot = copy.deepcopy(d)
    upgrade_dataset_manifest(d)
    assert d == snapshot


def test_upgrade_fails_with_owner_or_without_creator() -> None:
    with pytest.raises(ValueError):
        upgrade_dataset_manifest(dataset(owner=OWNER))
    d = dataset()
    del d["creator_uuid"]
    with pytest.raises(ValueError):
        upgrade_dataset_manifest(d)


def test_upgrade_restricted_to_uuid() -> None:
    m = upgrade_dataset_manifest(dataset(restricted_to_uuid=OTHER))
    assert m["public"] is False and m["acl"] == [OTHER]
    m = upgrade_dataset_manifest(dataset(restricted_to_uuid=""))
    assert m["public"] is True and "acl" not in m
    assert upgrade_dataset_manifest(dataset())["public"] is True


@pytest.mark.parametrize(
    ("value", "disabled"),
    [(None, False), (True, True), ("true", True), (False, False), ("false", False), (1, True), (0, False)],
)
def test_upgrade_disabled_and_state(value: Any, disabled: bool) -> None:
    d = dataset() if value is None else dataset(disabled=value)
    m = upgrade_dataset_manifest(d)
    assert m["disabled"] is disabled
    assert m["state"] == ("disabled" if disabled else "active")


def test_upgrade_published_at() -> None:
    # from created_at, with seconds inserted
    assert upgrade_dataset_manifest(dataset())["published_at"] == "2012-10-11T14:40:00Z"
    m = upgrade_dataset_manifest(dataset(published_at="2013-01-01T00:00:00.000Z"))
    assert m["published_at"] == "2013-01-01T00:00:00.000Z"
    m = upgrade_dataset_manifest(dataset(published_at="2013-01-01T10:20Z"))
    assert m["published_at"] == "2013-01-01T10:20:00Z"
    d = dataset()
    del d["created_at"]
    assert "published_at" not in upgrade_dataset_manifest(d)


@pytest.mark.parametrize(
    ("entry", "compression"),
    [
        ({"path": "a.zfs.gz"}, "gzip"),
        ({"path": "a.zfs.bz2"}, "bzip2"),
        ({"path": "a.zfs"}, "none"),
        ({"url": "https://x/a.zfs.gz"}, "gzip"),
        ({"path": "", "url": "https://x/a.bz2"}, "bzip2"),
        ({}, "none"),
        ({"path": "a.gz", "compression": "xz"}, "xz"),
    ],
)
def test_upgrade_file_compression(entry: dict[str, Any], compression: str) -> None:
    m = upgrade_dataset_manifest(dataset(files=[{"sha1": "a", "size": 1, **entry}]))
    assert m["files"] == [{"sha1": "a", "size": 1, "compression": compression}]


def test_upgrade_bad_files() -> None:
    with pytest.raises(ValueError):
        upgrade_dataset_manifest(dataset(files="x"))
    with pytest.raises(ValueError):
        upgrade_dataset_manifest(dataset(files=["x"]))
    d = dataset()
    del d["files"]
    assert "files" not in upgrade_dataset_manifest(d)


def test_upgrade_image_size_to_number() -> None:
    m = upgrade_dataset_manifest(dataset(image_size="16384"))
    assert m["image_size"] == 16384 and isinstance(m["image_size"], int)
    assert math.isnan(upgrade_dataset_manifest(dataset(image_size="big"))["image_size"])


def test_upgrade_keeps_urn_and_other_fields() -> None:
    m = upgrade_dataset_manifest(dataset(urn="sdc:sdc:ds:1.0", description="d", requirements={"a": 1}))
    assert m["urn"] == "sdc:sdc:ds:1.0" and m["description"] == "d" and m["requirements"] == {"a": 1}


# --- tags search array --------------------------------------------------------------------------


def test_tags_search_array() -> None:
    tags = {
        "role": "os",
        "n": 42,
        "f": 1.5,
        "i": 2.0,
        "t": True,
        "fa": False,
        "nul": None,
        "obj": {"a": 1},
        "arr": [1],
        "long": "x" * 101,
        "edge": "y" * 100,
        "empty": "",
        "astral": "😀" * 51,
        "eq=key": "v=w",
    }
    assert tags_search_array(tags) == [
        "role=os",
        "n=42",
        "f=1.5",
        "i=2",
        "t=true",
        "fa=false",
        "nul=",
        "obj=",
        "arr=",
        "long=",
        "edge=" + "y" * 100,
        "empty=",
        "astral=",
        "eq=key=v=w",
    ]


@pytest.mark.parametrize("value", [None, [], "x", 5])
def test_tags_search_array_of_non_object(value: Any) -> None:
    assert tags_search_array(value) == []
