"""UpdateImage rules: updatable keys, merge, re-validation."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.serialize import serialize_image
from catalog_service.domain.update import OPERATOR_ONLY, USER_UPDATABLE, apply_update, json_equal
from imgapi_common.errors import FieldError, ImgapiError
from tests.components import FIXTURES

DC = DomainConfig()
PUBLIC = DomainConfig(mode="public")
PUBLIC_CH = DomainConfig(mode="public", channels=("dev", "staging"))

OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
OTHER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
UUID = "5ce1b1a0-4d7a-4d3e-9c5f-3b2a1f0e9d8c"
NEW = "1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc"


def unactivated(**overrides: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "uuid": UUID,
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
        "files": [
            {
                "sha1": "a" * 40,
                "size": 42,
                "compression": "gzip",
                "contentMD5": "md5==",
                "mtime": "2013-01-01T00:00:00.000Z",
                "stor": "local",
                "blob_id": "blob-1",
            }
        ],
        "description": "desc",
        "tags": {"role": "os", "n": 1},
        "tags_search": ["role=os", "n=1"],
    }
    rec.update(overrides)
    return rec


def active(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"activated": True, "state": "active", "published_at": "2013-01-01T00:00:00.000Z"}
    return unactivated(**{**base, **overrides})


def update(
    rec: dict[str, Any], body: Any, cfg: DomainConfig = DC, account: str | None = None
) -> dict[str, Any]:
    return apply_update(rec, body, cfg, account=account)


def failure(
    rec: dict[str, Any], body: Any, cfg: DomainConfig = DC, account: str | None = None
) -> ImgapiError:
    with pytest.raises(ImgapiError) as info:
        apply_update(rec, body, cfg, account=account)
    assert info.value.code == "ValidationFailed"
    return info.value


# --- steps 1 and 2 --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, "x", 5, True])
def test_body_missing_or_not_object(body: Any) -> None:
    err = failure(unactivated(), body)
    assert err.message == "missing request body"
    assert list(err.errors) == [FieldError("body", "MissingParameter")]


@pytest.mark.parametrize("body", [{}, []])
def test_no_parameters(body: Any) -> None:
    err = failure(unactivated(), body)
    assert err.message == "invalid image update data: no parameters provided"
    assert list(err.errors) == []
    assert err.body()["errors"] == []


def test_array_body_has_index_keys() -> None:
    err = failure(unactivated(), ["a", "b"])
    assert err.message == "invalid image update data: 0, 1"
    assert list(err.errors) == [
        FieldError("0", "NotAllowed", "Parameter cannot be updated"),
        FieldError("1", "NotAllowed", "Parameter cannot be updated"),
    ]


# --- step 3: key checks ---------------------------------------------------------------------------


def test_example_immutable_field_by_user() -> None:
    err = failure(unactivated(), {"type": "zvol", "billing_tags": ["promo"]}, account=OWNER)
    assert err.message == "invalid image update data: type, billing_tags"
    assert err.body()["errors"] == [
        {"field": "type", "code": "NotAllowed", "message": "Parameter cannot be updated"},
        {"field": "billing_tags", "code": "NotAllowed", "message": "Can only be updated by operators"},
    ]


@pytest.mark.parametrize(
    "key",
    [
        "type",
        "disabled",
        "activated",
        "published_at",
        "icon",
        "v",
        "urn",
        "expires_at",
        "tags_search",
        "bogus",
    ],
)
@pytest.mark.parametrize("account", [None, OWNER])
def test_not_updatable_keys(key: str, account: str | None) -> None:
    err = failure(unactivated(), {key: "x"}, account=account)
    assert list(err.errors) == [FieldError(key, "NotAllowed", "Parameter cannot be updated")]
    assert err.message == f"invalid image update data: {key}"


def test_key_errors_body_order_then_operator_keys_in_fixed_order() -> None:
    body = {"uuid": NEW, "zzz": 1, "state": "active", "type": "x", "origin": OWNER, "error": {}}
    err = failure(unactivated(), body, account=OWNER)
    assert [e.field for e in err.errors] == ["zzz", "type", "state", "error", "origin", "uuid"]
    assert err.message == "invalid image update data: zzz, type, state, error, origin, uuid"


@pytest.mark.parametrize("key", OPERATOR_ONLY)
def test_operator_only_keys_with_account(key: str) -> None:
    err = failure(unactivated(), {key: "x"}, account=OWNER)
    assert list(err.errors) == [FieldError(key, "NotAllowed", "Can only be updated by operators")]


@pytest.mark.parametrize("key", ["uuid", "origin", "files"])
def test_unactivated_only_keys_on_activated_image(key: str) -> None:
    value: Any = [{"digest": "sha256:x"}] if key == "files" else NEW
    err = failure(active(), {key: value})
    assert list(err.errors) == [FieldError(key, "NotAllowed", "Can only be updated on unactivated images")]
    disabled = active(disabled=True, state="disabled")
    assert failure(disabled, {key: value}).errors[0].message == "Can only be updated on unactivated images"


def test_operator_check_precedes_activation_check() -> None:
    err = failure(active(), {"uuid": NEW}, account=OWNER)
    assert err.errors[0].message == "Can only be updated by operators"


# --- operator updates -----------------------------------------------------------------------------


def test_operator_updates_uuid_and_origin_on_unactivated() -> None:
    new = update(unactivated(), {"uuid": NEW, "origin": OTHER})
    assert new["uuid"] == NEW and new["origin"] == OTHER


def test_operator_state_and_error() -> None:
    new = update(unactivated(), {"state": "failed", "error": {"message": "boom", "code": "X"}})
    assert new["state"] == "failed" and new["error"] == {"message": "boom", "code": "X"}
    # state is only enum-checked: may contradict activated/disabled
    assert update(unactivated(), {"state": "active"})["state"] == "active"
    err = failure(unactivated(), {"state": "bogus"})
    assert err.message == "invalid image data: state"


def test_operator_billing_tags_and_traits() -> None:
    new = update(active(), {"billing_tags": "promo", "traits": {"a": True}})
    assert new["billing_tags"] == ["promo"]  # normalized
    assert new["traits"] == {"a": True}
    assert failure(active(), {"traits": {"a": 1}}).message == "invalid image data: traits"


def test_files_digest_update() -> None:
    rec = unactivated()
    new = update(rec, {"files": [{"digest": "sha256:d", "uncompressedDigest": "sha256:u"}]})
    f = new["files"][0]
    assert f["digest"] == "sha256:d" and f["uncompressedDigest"] == "sha256:u"
    assert f["sha1"] == "a" * 40 and f["blob_id"] == "blob-1" and f["contentMD5"] == "md5=="
    assert "digest" not in rec["files"][0]
    # unchanged other keys are tolerated (e.g. a re-submitted manifest entry)
    new = update(rec, {"files": [{"sha1": "a" * 40, "size": 42.0, "compression": "gzip", "digest": "d"}]})
    assert new["files"][0]["digest"] == "d"


@pytest.mark.parametrize(
    "files",
    [
        [{"sha1": "b" * 40}],
        [{"size": 43}],
        [{"size": True}],
        [{"compression": "xz", "digest": "d"}],
        [{"newkey": 1}],
        [],
        "x",
        None,
        ["x"],
    ],
)
def test_files_other_changes_not_allowed(files: Any) -> None:
    err = failure(unactivated(), {"files": files})
    assert [(e.field, e.code) for e in err.errors] == [("files", "NotAllowed")]


def test_files_update_without_file_is_accepted_and_changes_nothing() -> None:
    rec = unactivated(files=[])
    assert update(rec, {"files": [{"digest": "d"}]}) == rec
    rec = unactivated()
    rec.pop("files", None)
    assert "files" not in update(rec, {"files": [{"digest": "d"}]})


# --- user-updatable keys --------------------------------------------------------------------------


USER_VALUES: dict[str, Any] = {
    "owner": OTHER,
    "name": "renamed",
    "version": "2.0",
    "description": "new",
    "homepage": "https://example.com",
    "eula": "https://example.com/eula",
    "public": True,
    "os": "linux",
    "acl": [OTHER],
    "requirements": {"min_ram": 256},
    "users": [{"name": "root"}],
    "tags": {"x": "y"},
    "generate_passwords": False,
    "inherited_directories": ["/opt"],
    "nic_driver": "",
    "disk_driver": "",
    "cpu_type": "",
    "image_size": 0,
}


def test_user_updatable_set() -> None:
    assert set(USER_VALUES) | {"channels"} == USER_UPDATABLE


@pytest.mark.parametrize("key", sorted(USER_VALUES))
def test_user_can_update(key: str) -> None:
    new = update(active(), {key: USER_VALUES[key]}, account=OWNER)
    assert new[key] == USER_VALUES[key]


def test_update_does_not_mutate_input() -> None:
    rec = active()
    snapshot = copy.deepcopy(rec)
    body = {"tags": {"a": [1]}, "name": "x"}
    new = update(rec, body)
    assert rec == snapshot
    new["tags"]["a"].append(2)
    assert body["tags"] == {"a": [1]}


# --- step 4: merge --------------------------------------------------------------------------------


def test_null_deletes() -> None:
    new = update(active(), {"description": None, "homepage": None})
    assert "description" not in new and "homepage" not in new
    view = serialize_image(new, DC, include_channels=True, include_admin_fields=False)
    assert "description" not in view


def test_null_deleting_required_field_fails_validation() -> None:
    err = failure(active(), {"name": None})
    assert err.message == "invalid image data: name"
    assert list(err.errors) == [FieldError("name", "MissingParameter")]


def test_null_acl_becomes_empty() -> None:
    assert update(active(acl=[OTHER]), {"acl": None})["acl"] == []
    assert update(active(), {"acl": OTHER})["acl"] == [OTHER]


def test_tags_replace_whole_object_and_search_array() -> None:
    new = update(active(), {"tags": {"k": 2.0, "b": False}})
    assert new["tags"] == {"k": 2.0, "b": False}
    assert new["tags_search"] == ["k=2", "b=false"]


def test_tags_null_quirk_keeps_tags() -> None:
    new = update(active(), {"tags": None})
    assert new["tags"] == {"role": "os", "n": 1}
    assert "tags_search" not in new
    view = serialize_image(new, DC, include_channels=True, include_admin_fields=False)
    assert view["tags"] == {"role": "os", "n": 1}


def test_tags_invalid_reported_after_merge() -> None:
    assert failure(active(), {"tags": ["a"]}).message == "invalid image data: tags"
    assert failure(active(), {"tags": "a"}).message == "invalid image data: tags"


def test_image_size_numeric_string_stored_as_given() -> None:
    # (the reference converts image_size on create/import only; an update stores the string)
    zvol = active(type="zvol", nic_driver="virtio", disk_driver="virtio", cpu_type="host", image_size=1024)
    assert update(zvol, {"image_size": "2048"})["image_size"] == "2048"
    assert update(zvol, {"image_size": "1e3"})["image_size"] == "1e3"
    assert failure(zvol, {"image_size": "big"}).message == "invalid image data: image_size"
    assert failure(zvol, {"image_size": None}).errors[0] == FieldError("image_size", "MissingParameter")


def test_zvol_fields_on_non_zvol_image() -> None:
    assert failure(active(), {"nic_driver": "virtio"}).message == "invalid image data: nic_driver"
    assert failure(active(), {"image_size": 5}).message == "invalid image data: image_size"


def test_other_keys_replace() -> None:
    new = update(active(requirements={"min_ram": 1, "brand": "lx"}), {"requirements": {"max_ram": 5}})
    assert new["requirements"] == {"max_ram": 5}


def test_update_keeps_state_and_internal_fields() -> None:
    rec = active(icon={"sha1": "x", "size": 1, "contentMD5": "m", "contentType": "image/png", "blob_id": "i"})
    new = update(rec, {"name": "renamed"})
    for key in ("state", "activated", "disabled", "published_at", "files", "icon"):
        assert new[key] == rec[key]


# --- step 5: re-validation in the server mode -----------------------------------------------------


def test_public_false_on_public_server() -> None:
    rec = active(public=True)
    err = failure(rec, {"public": False}, PUBLIC)
    assert err.message == "invalid image data: public"
    assert list(err.errors) == [
        FieldError("public", "Invalid", "private images are not allowed on a public Images API")
    ]


def test_unknown_os() -> None:
    err = failure(active(), {"os": "beos"}, account=OWNER)
    assert err.message == "invalid image data: os"


def test_channels_update_on_channel_server() -> None:
    rec = active(public=True, channels=["dev"])
    new = update(rec, {"channels": ["staging", "unknown"]}, PUBLIC_CH, account=OWNER)
    assert new["channels"] == ["staging", "unknown"]
    assert failure(rec, {"channels": None}, PUBLIC_CH).errors[0] == FieldError("channels", "MissingParameter")
    assert failure(active(), {"channels": ["dev"]}).message == "invalid image data: channels"


def test_update_fixture_records() -> None:
    records = json.loads((FIXTURES / "dc-test-images.json").read_text())
    father = next(r for r in records if r["name"] == "i-am-your-father")
    new = update(father, {"description": "Luke"}, account=father["owner"])
    assert new["acl"] == ["91ba0e64-2547-11e2-a972-df579e5fddb3"]  # bare string normalized
    assert new["description"] == "Luke"


# --- json_equal -----------------------------------------------------------------------------------


def test_json_equal() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(1, True)
    assert not json_equal(True, 1)
    assert json_equal({"a": [1, "x"]}, {"a": [1.0, "x"]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal([1], [1, 2])
    assert not json_equal("1", 1)
    assert json_equal(None, None)
    assert not json_equal(None, False)
