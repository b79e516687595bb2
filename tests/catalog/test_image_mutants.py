"""The Image model's transitions, record by record and message by message.

Written to kill the mutants scripts/mutation found surviving (or unreached: clones, icons and
channels were tested only over gRPC) in catalog_service/domain/image.py. Every record and
message asserted here is what a REST client reads back: a file or icon entry, the clone's stored
record, the error text.
"""

from __future__ import annotations

from typing import Any

import pytest

from catalog_service.domain.image import Image, walk_origins
from imgapi_common.errors import FieldError, ImgapiError

OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
OTHER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
ADMIN = "ba28f844-8cb4-f141-882d-46d6251e6a9f"
UUID = "5ce1b1a0-4d7a-4d3e-9c5f-3b2a1f0e9d8c"
NEW = "0fd3e4c6-2a6b-4c0f-8f33-7b7a2a1e3c11"
NOW = "2026-01-01T00:00:00.000Z"
ENTRY = {
    "sha1": "a" * 40,
    "size": 42,
    "compression": "gzip",
    "contentMD5": "md5==",
    "blob_id": "blob-1",
    "ignored": "not copied",
}


def record(**fields: Any) -> dict[str, Any]:
    return {"uuid": UUID, "owner": OWNER, "state": "unactivated", **fields}


def error_of(call: Any, *args: Any, **kwargs: Any) -> ImgapiError:
    with pytest.raises(ImgapiError) as e:
        call(*args, **kwargs)
    return e.value


# --- origins ----------------------------------------------------------------------------------


def test_origin_walk_hands_each_record_to_stop_and_names_what_is_missing() -> None:
    store = {
        "u1": {"uuid": "u1", "owner": ADMIN},
        "u2": {"uuid": "u2", "owner": OWNER, "origin": "u1"},
    }
    # stop decides on the record (clones stop at the operator's base): u1 is the base
    chain, base = walk_origins("u2", store.get, stop=lambda _u, r: r.get("owner") == ADMIN)
    assert (chain, base) == ([store["u2"]], "u1")
    e = error_of(walk_origins, "u3", store.get)
    assert (e.code, e.message) == ("ResourceNotFound", "image u3 not found")


def test_origin_walk_too_long_message() -> None:
    def load(u: str) -> dict[str, Any]:
        return {"uuid": u, "origin": u + "x"}  # an endless chain

    e = error_of(walk_origins, "a", load)
    assert (e.code, e.message) == ("InternalError", "origin chain too long")


# --- state, files and activation -------------------------------------------------------------


def test_state_of_an_unactivated_image() -> None:
    img = Image(record(state="active", activated=False))
    img.recompute_state()
    assert img.record == record(state="unactivated", activated=False)
    img.set_disabled(True)
    assert img.record["state"] == "unactivated" and img.record["disabled"] is True


def test_attach_file_stores_exactly_the_file_entry() -> None:
    img = Image(record(files=[{"sha1": "old"}]))
    img.attach_file(ENTRY, now=NOW, default_stor="local")
    assert img.record["files"] == [
        {
            "sha1": "a" * 40,
            "size": 42,
            "compression": "gzip",
            "contentMD5": "md5==",
            "mtime": NOW,
            "stor": "local",
            "blob_id": "blob-1",
        }
    ]
    img.attach_file({**ENTRY, "dataset_guid": "dg", "stor": "s3"}, now=NOW, default_stor="local")
    (f,) = img.record["files"]
    assert (f["dataset_guid"], f["stor"]) == ("dg", "s3")
    assert list(f) == [
        "sha1",
        "size",
        "compression",
        "dataset_guid",
        "contentMD5",
        "mtime",
        "stor",
        "blob_id",
    ]
    img.attach_file({**ENTRY, "dataset_guid": "", "stor": ""}, now=NOW, default_stor="local")
    assert "dataset_guid" not in img.record["files"][0] and img.record["files"][0]["stor"] == "local"


def test_files_of_an_activated_image_cannot_change() -> None:
    img = Image(record(activated=True))
    e = error_of(img.attach_file, ENTRY, now=NOW, default_stor="local")
    assert (e.code, e.message) == ("ImageAlreadyActivated", f'image "{UUID}" is already activated')
    e = error_of(img.detach_file)
    assert (e.code, e.message) == ("ImageFilesImmutable", f"cannot modify files on activated image {UUID}")


def test_detach_file_leaves_an_empty_list() -> None:
    img = Image(record(files=[dict(ENTRY)]))
    img.detach_file()
    assert img.record["files"] == []


@pytest.mark.parametrize("files", [None, [], {"sha1": "a"}, "file"])
def test_only_a_non_empty_array_is_a_file(files: Any) -> None:
    img = Image(record(files=files))
    assert img.has_file() is False
    e = error_of(img.activate, NOW)
    assert (e.code, e.message) == (
        "NoActivationNoFile",
        f'image "{UUID}" cannot be activated: it has no file',
    )


def test_activation_keeps_a_given_published_at() -> None:
    img = Image(record(files=[dict(ENTRY)], published_at="2020-05-05T00:00:00.000Z"))
    img.activate(NOW)  # no expires_at to drop: not an error
    assert img.record["published_at"] == "2020-05-05T00:00:00.000Z"
    assert (img.record["activated"], img.record["state"]) == (True, "active")
    e = error_of(img.activate, NOW)
    assert e.message == f'image "{UUID}" is already activated'


# --- icon -------------------------------------------------------------------------------------


def test_icon_attach_and_detach() -> None:
    img = Image(record())
    e = error_of(img.detach_icon)
    assert (e.code, e.message) == ("ResourceNotFound", f'image "{UUID}" has no icon')
    icon = {"sha1": "b" * 40, "size": 7, "contentMD5": "m==", "contentType": "image/png", "blob_id": "i1"}
    img.attach_icon({**icon, "extra": 1}, now=NOW, default_stor="local")
    assert img.record["icon"] == {**icon, "mtime": NOW, "stor": "local"}
    assert list(img.record["icon"]) == [
        "sha1",
        "size",
        "contentMD5",
        "contentType",
        "mtime",
        "stor",
        "blob_id",
    ]
    img.attach_icon({**icon, "stor": "s3"}, now=NOW, default_stor="local")
    assert img.record["icon"]["stor"] == "s3"
    img.detach_icon()
    assert "icon" not in img.record
    img.record["icon"] = "not an object"
    assert error_of(img.detach_icon).code == "ResourceNotFound"


# --- deletion ---------------------------------------------------------------------------------


def test_dependents_are_all_named_below_ten() -> None:
    img = Image(record())
    nine = [f"d{i}" for i in range(9)]
    assert error_of(img.check_deletable, nine).message == (
        f'image "{UUID}" has 9 dependent incremental image(s): d0, d1, d2, d3, d4, d5, d6, d7, d8'
    )
    ten = [f"d{i}" for i in range(10)]
    assert error_of(img.check_deletable, ten).message == (
        f'image "{UUID}" has 10 dependent incremental image(s): d0, d1, d2, d3, d4, and 5 more...'
    )


# --- channels ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "in_dev", "several"),
    [(None, False, False), ("dev", False, False), (["dev"], True, False), (["dev", "x"], True, True)],
)
def test_channel_membership(channels: Any, in_dev: bool, several: bool) -> None:
    img = Image(record(channels=channels))
    assert img.in_channel("dev") is in_dev
    assert img.in_several_channels() is several


def test_add_and_remove_channels() -> None:
    img = Image(record())
    img.add_channel("dev", ("dev", "staging"), given=True)
    img.add_channel("staging", ("dev", "staging"), given=True)
    img.add_channel("dev", ("dev", "staging"), given=True)
    assert img.record["channels"] == ["dev", "staging"]
    for name, given, shown in [("nope", True, "nope"), (5, True, "5"), (None, False, "undefined")]:
        e = error_of(img.add_channel, name, ("dev", 5), given=given)
        assert (e.code, e.message, list(e.errors)) == (
            "ValidationFailed",
            f"unknown channel: {shown}",
            [FieldError("channel", "Invalid")],
        )
    img.remove_channel("dev")
    assert img.record["channels"] == ["staging"]
    img.remove_channel("absent")
    assert img.record["channels"] == ["staging"]
    img.record["channels"] = "staging"
    img.remove_channel("staging")
    assert img.record["channels"] == []
    img.record["channels"] = "dev"
    img.add_channel("staging", ("staging",), given=True)
    assert img.record["channels"] == ["staging"]


# --- clones -----------------------------------------------------------------------------------


def cloneable(**fields: Any) -> Image:
    base: dict[str, Any] = {"activated": True, "state": "active", "acl": [OTHER], "files": [dict(ENTRY)]}
    return Image(record(**{**base, **fields}))


def test_who_may_clone_what() -> None:
    cloneable().check_cloneable_by(OTHER)
    cloneable(files=[]).check_cloneable_by(OTHER)  # a missing file is the clone's own error
    cases: list[tuple[Image, tuple[str, str, list[FieldError]]]] = [
        (
            Image(record(acl=[OTHER], files=[dict(ENTRY)])),
            ("ValidationFailed", "image is not active", [FieldError("active", "Invalid")]),
        ),
        (cloneable(acl=[]), ("ImageNotShared", f"image {UUID} is not shared with account {OTHER}", [])),
        (
            cloneable(type="docker"),
            ("ValidationFailed", "image is a docker image", [FieldError("type", "Invalid")]),
        ),
        (
            cloneable(files=[dict(ENTRY), dict(ENTRY)]),
            ("NotImplemented", "cannot clone an image with multiple files", []),
        ),
    ]
    for img, expected in cases:
        e = error_of(img.check_cloneable_by, OTHER)
        assert (e.code, e.message, list(e.errors)) == expected
    cloneable(acl=OTHER).check_cloneable_by(OTHER)  # a bare-string acl is one account
    cloneable(type="zvol").check_cloneable_by(OTHER)


def test_a_clone_is_a_private_activated_copy() -> None:
    src = cloneable(
        v=2,
        name="base",
        origin="0000",
        published_at="2020-01-01T00:00:00.000Z",
        icon={"sha1": "i"},
        urn="sdc:x",
        expires_at="2030-01-01T00:00:00Z",
        tags={"a": {"nested": [1]}},
        disabled=False,
    )
    clone = src.clone_for(OTHER, new_uuid=NEW, origin="1111", disabled=False, now=NOW).record
    assert clone == {
        "v": 2,
        "uuid": NEW,
        "owner": OTHER,
        "state": "active",
        "activated": True,
        "acl": [],
        "files": [ENTRY],
        "name": "base",
        "origin": "1111",
        "published_at": NOW,
        "tags": {"a": {"nested": [1]}},
        "disabled": False,
    }
    assert list(clone)[:2] == ["v", "uuid"]
    clone["tags"]["a"]["nested"].append(2)
    clone["files"][0]["size"] = 0
    assert src.record["tags"] == {"a": {"nested": [1]}} and src.record["files"][0]["size"] == 42
    assert src.record["uuid"] == UUID and src.record["acl"] == [OTHER]


def test_an_intermediate_clone_is_disabled_and_a_root_clone_has_no_origin() -> None:
    src = cloneable(origin="0000")
    del src.record["owner"]
    clone = src.clone_for(OTHER, new_uuid=NEW, origin=None, disabled=True, now=NOW).record
    assert "origin" not in clone
    assert (clone["disabled"], clone["state"], clone["v"]) == (True, "disabled", 2)
    assert list(clone)[:2] == ["v", "uuid"]
    plain = cloneable().clone_for(OTHER, new_uuid=NEW, origin=None, disabled=False, now=NOW).record
    assert "disabled" not in plain and "origin" not in plain and plain["state"] == "active"


def test_a_clone_needs_a_file() -> None:
    e = error_of(cloneable(files=[]).clone_for, OTHER, new_uuid=NEW, origin=None, disabled=False, now=NOW)
    assert (e.code, e.message) == ("NoActivationNoFile", f'image "{NEW}" cannot be activated: it has no file')
