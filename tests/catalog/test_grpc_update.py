"""UpdateImage through gRPC (with conditional headers): every rule, and a failed
update always leaves the image exactly as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest
from imgapi.v1 import common_pb2

from imgapi_common.errors import ImgapiError
from tests.catalog.conftest import (
    EMPEROR,
    LUKE,
    VADER,
    Catalog,
    caller,
    catalog_channels,
    catalog_dc,
    catalog_public,
    manifest,
)
from tests.catalog.grpc_support import (
    activate,
    create_active,
    errs,
    etags,
    file_msg,
    get_view,
    list_uuids,
    new_uuid,
    snapshot,
    update,
    view_of,
)

__all__ = ["catalog_channels", "catalog_dc", "catalog_public"]


def failed_update(
    cat: Catalog, uuid: str, body: Any, account: str = "", channel: str = "", **kw: Any
) -> ImgapiError:
    """Run an update that must fail; assert the image is byte-for-byte unchanged afterwards."""
    before = snapshot(cat, uuid)
    with pytest.raises(ImgapiError) as ei:
        update(cat, uuid, body, account, channel, **kw)
    assert snapshot(cat, uuid) == before, "a failed update changed the image"
    return ei.value


# --- step 1-2: body shape --------------------------------------------------------------------


@pytest.mark.parametrize("body", ["", "null", "42", '"text"', "true"])
def test_missing_body(catalog_dc: Catalog, body: str) -> None:
    img = catalog_dc.create(manifest())
    e = failed_update(catalog_dc, img["uuid"], body)
    assert (e.code, e.http_status, e.message) == ("ValidationFailed", 422, "missing request body")
    assert errs(e) == [("body", "MissingParameter")]


def test_empty_object(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    e = failed_update(catalog_dc, img["uuid"], {})
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert e.message == "invalid image update data: no parameters provided"
    assert e.body()["errors"] == []


def test_array_body_keys_are_indexes(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    e = failed_update(catalog_dc, img["uuid"], "[1, 2]")
    assert errs(e) == [("0", "NotAllowed"), ("1", "NotAllowed")]


def test_bad_json(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    e = failed_update(catalog_dc, img["uuid"], '{"name": ')
    assert (e.code, e.http_status) == ("InvalidContent", 400)


# --- step 3: key checks -------------------------------------------------------------------------


NOT_UPDATABLE = ["type", "disabled", "activated", "published_at", "icon", "v", "urn", "expires_at", "bogus"]


@pytest.mark.parametrize("key", NOT_UPDATABLE)
def test_not_updatable_keys(catalog_dc: Catalog, key: str) -> None:
    img = catalog_dc.create(manifest())
    e = failed_update(catalog_dc, img["uuid"], {key: "x"})
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert e.body()["errors"] == [
        {"field": key, "code": "NotAllowed", "message": "Parameter cannot be updated"}
    ]
    assert e.message == f"invalid image update data: {key}"


def test_key_errors_order_user(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    body = {
        "uuid": new_uuid(),
        "foo": 1,
        "traits": {},
        "state": "active",
        "type": "zvol",
        "name": "ok",
        "origin": img["uuid"],
        "error": {},
        "billing_tags": [],
        "files": [],
    }
    e = failed_update(catalog_dc, img["uuid"], body, account=VADER)
    assert e.code == "ValidationFailed"
    expected = ["foo", "type", "state", "error", "billing_tags", "traits", "files", "origin", "uuid"]
    assert [f for f, _ in errs(e)] == expected
    assert all(c == "NotAllowed" for _, c in errs(e))
    msgs = [x.message for x in e.errors]
    assert msgs[:2] == ["Parameter cannot be updated"] * 2
    assert msgs[2:] == ["Can only be updated by operators"] * 7
    assert e.message == "invalid image update data: " + ", ".join(expected)


@pytest.mark.parametrize("key", ["uuid", "origin", "files"])
def test_unactivated_only_keys_on_active_image(catalog_dc: Catalog, key: str) -> None:
    base = catalog_dc.create(manifest())
    img = create_active(catalog_dc, manifest())
    value: Any = {"uuid": new_uuid(), "origin": base["uuid"], "files": img["files"]}[key]
    e = failed_update(catalog_dc, img["uuid"], {key: value})
    assert e.body()["errors"] == [
        {"field": key, "code": "NotAllowed", "message": "Can only be updated on unactivated images"}
    ]


def test_user_may_update_user_fields(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    body = {
        "name": "renamed",
        "version": "2.0",
        "description": "d",
        "homepage": "https://h",
        "eula": "https://e",
        "public": True,
        "os": "linux",
        "acl": [LUKE],
        "requirements": {"min_ram": 512},
        "users": [{"name": "root"}],
        "tags": {"a": 1},
        "generate_passwords": True,
        "inherited_directories": ["/x"],
    }
    out = view_of(update(catalog_dc, img["uuid"], body, account=VADER))
    for k, v in body.items():
        assert out[k] == v, k
    assert out["state"] == "unactivated"


def test_operator_fields(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    out = view_of(
        update(
            catalog_dc,
            img["uuid"],
            {"billing_tags": ["b1"], "traits": {"t": "v"}, "state": "failed", "error": {"message": "boom"}},
        )
    )
    assert out["billing_tags"] == ["b1"] and out["traits"] == {"t": "v"}
    assert out["state"] == "failed" and out["error"] == {"message": "boom"}
    # error is only shown in failed state
    out = view_of(update(catalog_dc, img["uuid"], {"state": "unactivated"}))
    assert "error" not in out


def test_state_is_enum_checked(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    e = failed_update(catalog_dc, img["uuid"], {"state": "bogus"})
    assert e.code == "ValidationFailed" and errs(e) == [("state", "Invalid")]
    assert e.message == "invalid image data: state"


def test_files_digest_update(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    f = view_of(
        catalog_dc.call(
            "AttachImageFile",
            caller=caller(),
            view=common_pb2.ImageView(include_channels=True),
            uuid=img["uuid"],
            file=file_msg(),
        )
    )["files"][0]
    r = update(
        catalog_dc, img["uuid"], {"files": [dict(f, digest="sha256:aa", uncompressedDigest="sha256:bb")]}
    )
    assert r.image.files[0].digest == "sha256:aa"
    assert r.image.files[0].uncompressed_digest == "sha256:bb"
    assert view_of(r)["files"] == [f]  # digests are stored only
    e = failed_update(catalog_dc, img["uuid"], {"files": [dict(f, sha1="0" * 40)]})
    assert errs(e) == [("files", "NotAllowed")]
    e = failed_update(catalog_dc, img["uuid"], {"files": [dict(f, size=1)]}, account=VADER)
    assert errs(e) == [("files", "NotAllowed")]


# --- step 4: merge --------------------------------------------------------------------------------


def test_null_deletes_field(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest(description="d", homepage="https://h", acl=[LUKE]))
    out = view_of(update(catalog_dc, img["uuid"], {"description": None, "acl": None}))
    assert "description" not in out and "acl" not in out and out["homepage"] == "https://h"
    assert get_view(catalog_dc, img["uuid"]) == out


def test_tags_replace_and_search(catalog_dc: Catalog) -> None:
    m = manifest(tags={"color": "red", "size": 3})
    img = create_active(catalog_dc, m)
    uuid = img["uuid"]
    assert list_uuids(catalog_dc, name=m["name"], tags={"color": "red"}) == [uuid]
    out = view_of(update(catalog_dc, uuid, {"tags": {"shape": "round"}}))
    assert out["tags"] == {"shape": "round"}
    assert list_uuids(catalog_dc, name=m["name"], tags={"color": "red"}) == []
    assert list_uuids(catalog_dc, name=m["name"], tags={"shape": "round"}) == [uuid]
    # quirk: {"tags": null} only drops the search array; the tags stay visible
    out = view_of(update(catalog_dc, uuid, {"tags": None}))
    assert out["tags"] == {"shape": "round"}
    assert list_uuids(catalog_dc, name=m["name"], tags={"shape": "round"}) == []
    assert list_uuids(catalog_dc, name=m["name"], tags={"shape": ""}) == []


def test_each_side_table_follows_its_own_field(catalog_dc: Catalog) -> None:
    """An update rewrites only the side tables whose rows changed: what one update leaves alone
    stays searchable, what it changes is searchable as changed (tags, acl, billing tags, files)."""
    m = manifest(public=False, owner=VADER, tags={"color": "red"}, billing_tags=["gold"])
    uuid = create_active(catalog_dc, m)["uuid"]
    name = m["name"]

    def found(**filters: Any) -> bool:
        account = filters.pop("account", "")
        return list_uuids(catalog_dc, account, name=name, **filters) == [uuid]

    assert found(tags={"color": "red"}) and found(billing_tags=["gold"]) and not found(account=LUKE)
    update(catalog_dc, uuid, {"acl": [LUKE]})
    assert found(account=LUKE) and found(tags={"color": "red"}) and found(billing_tags=["gold"])
    update(catalog_dc, uuid, {"tags": {"color": "blue"}})
    assert found(tags={"color": "blue"}) and not found(tags={"color": "red"})
    assert found(account=LUKE) and found(billing_tags=["gold"])
    update(catalog_dc, uuid, {"billing_tags": ["silver"]})
    assert found(billing_tags=["silver"]) and not found(billing_tags=["gold"])
    assert found(account=LUKE) and found(tags={"color": "blue"})
    update(catalog_dc, uuid, {"description": "no side table changes"})
    assert found(account=LUKE) and found(tags={"color": "blue"}) and found(billing_tags=["silver"])
    update(catalog_dc, uuid, {"acl": []})
    assert not found(account=LUKE) and found(tags={"color": "blue"})


def test_image_size_string_stored_as_given(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(
        manifest(type="zvol", nic_driver="a", disk_driver="b", cpu_type="c", image_size="1e3")
    )
    assert img["image_size"] == 1000  # create converts with Number()
    assert view_of(update(catalog_dc, img["uuid"], {"image_size": "1e3"}))["image_size"] == "1e3"
    e = failed_update(catalog_dc, img["uuid"], {"image_size": "big"})
    assert errs(e) == [("image_size", "Invalid")]


# --- step 5: re-validation -------------------------------------------------------------------------


REVALIDATION_CASES: list[tuple[dict[str, Any], list[tuple[str, str]]]] = [
    ({"os": "beos"}, [("os", "Invalid")]),
    ({"name": "bad!"}, [("name", "Invalid")]),
    ({"name": None}, [("name", "MissingParameter")]),
    ({"owner": "nope"}, [("owner", "Invalid")]),
    ({"version": "x" * 513, "os": "beos"}, [("version", "Invalid"), ("os", "Invalid")]),
    ({"tags": []}, [("tags", "Invalid")]),
    ({"requirements": {"min_ram": "x"}}, [("requirements.min_ram", "Invalid")]),
    ({"acl": ["x"]}, [("acl", "Invalid")]),
    ({"public": "nah"}, [("public", "Invalid")]),
    ({"nic_driver": "virtio"}, [("nic_driver", "Invalid")]),
    ({"inherited_directories": "x"}, [("inherited_directories", "Invalid")]),
    ({"channels": ["dev"]}, [("channels", "Invalid")]),  # no channels on this server
    ({"traits": None, "billing_tags": [5]}, [("billing_tags", "Invalid")]),
    ({"origin": "not-a-uuid"}, [("origin", "Invalid")]),
    ({"error": "x"}, [("error", "Invalid")]),
]


@pytest.mark.parametrize(
    ("body", "expected"), REVALIDATION_CASES, ids=[str(i) for i in range(len(REVALIDATION_CASES))]
)
def test_revalidation(catalog_dc: Catalog, body: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    img = catalog_dc.create(manifest(description="keep", tags={"k": "v"}))
    e = failed_update(catalog_dc, img["uuid"], body)
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert errs(e) == expected
    assert e.message == "invalid image data: " + ", ".join(f for f, _ in expected)


def test_public_false_on_public_server(catalog_public: Catalog) -> None:
    img = catalog_public.create(manifest(public=True))
    e = failed_update(catalog_public, img["uuid"], {"public": False})
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert errs(e) == [("public", "Invalid")] and "public" in e.message


def test_failed_update_on_active_image_unchanged(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest(tags={"a": 1}, acl=[LUKE]))
    for body in ({"name": "ok", "os": "beos"}, {"type": "zvol"}, {"tags": "x"}, {"acl": [LUKE, "bad"]}):
        failed_update(catalog_dc, img["uuid"], body)
    assert get_view(catalog_dc, img["uuid"]) == img


# --- step 7: uuid change --------------------------------------------------------------------------


def test_uuid_change_moves_record(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    target = new_uuid()
    out = view_of(update(catalog_dc, img["uuid"], {"uuid": target}))
    assert out["uuid"] == target
    assert catalog_dc.error("GetImage", caller=caller(), uuid=img["uuid"]).code == "ResourceNotFound"
    assert get_view(catalog_dc, target)["name"] == img["name"]
    assert activate(catalog_dc, target)["state"] == "active"


def test_uuid_change_conflict(catalog_dc: Catalog) -> None:
    a = catalog_dc.create(manifest())
    b = catalog_dc.create(manifest())
    e = failed_update(catalog_dc, a["uuid"], {"uuid": b["uuid"]})
    assert (e.code, e.http_status) == ("ImageUuidAlreadyExists", 409)
    assert get_view(catalog_dc, b["uuid"]) == b


# --- owner / visibility ----------------------------------------------------------------------------


def test_not_image_owner(catalog_dc: Catalog) -> None:
    shared = create_active(catalog_dc, manifest(acl=[LUKE]))
    e = failed_update(catalog_dc, shared["uuid"], {"name": "x"}, account=LUKE)
    assert (e.code, e.http_status) == ("NotImageOwner", 422)
    assert e.message == f"account {LUKE} is not the owner of image {shared['uuid']}"
    # NotImageOwner is checked before the body
    e = failed_update(catalog_dc, shared["uuid"], {}, account=LUKE)
    assert e.code == "NotImageOwner"
    # invisible to emperor -> 404
    e = failed_update(catalog_dc, shared["uuid"], {"name": "x"}, account=EMPEROR)
    assert (e.code, e.http_status) == ("ResourceNotFound", 404)
    e = failed_update(catalog_dc, shared["uuid"], {"name": "x"}, account="bogus")
    assert (e.code, errs(e)) == ("InvalidParameter", [("account", "Invalid")])


def test_unknown_image(catalog_dc: Catalog) -> None:
    missing = new_uuid()
    e = catalog_dc.error("UpdateImage", caller=caller(), uuid=missing, update_json="{}")
    assert (e.code, e.http_status, e.message) == ("ResourceNotFound", 404, f"image {missing} not found")


# --- ETag / If-Match ----------------------------------------------------------------------------


def cond(
    if_match: common_pb2.EntityTagCondition | None = None,
    if_none_match: common_pb2.EntityTagCondition | None = None,
) -> common_pb2.Preconditions:
    return common_pb2.Preconditions(if_match=if_match, if_none_match=if_none_match)


def test_if_match_succeeds_with_previous_etag(catalog_dc: Catalog) -> None:
    r = catalog_dc.call(
        "CreateImage",
        caller=caller(),
        view=common_pb2.ImageView(include_channels=True),
        manifest_json=json.dumps(manifest()),
    )
    uuid, etag = r.image.uuid, r.image.etag
    r2 = update(catalog_dc, uuid, {"description": "one"}, preconditions=cond(if_match=etags(etag)))
    assert r2.image.etag != etag and r2.image.revision == r.image.revision + 1
    # chain: the etag of each response is the next If-Match
    r3 = update(catalog_dc, uuid, {"description": "two"}, preconditions=cond(if_match=etags(r2.image.etag)))
    update(
        catalog_dc, uuid, {"description": "3"}, preconditions=cond(if_match=etags(r3.image.etag, weak=True))
    )
    update(catalog_dc, uuid, {"description": "4"}, preconditions=cond(if_match=etags("*")))
    cur = get_view(catalog_dc, uuid)
    assert cur["description"] == "4"
    etag_now = catalog_dc.call("GetImage", caller=caller(), uuid=uuid).image.etag
    update(catalog_dc, uuid, {"description": "5"}, preconditions=cond(if_match=etags("nope", etag_now)))


def test_if_match_mismatch_412(catalog_dc: Catalog) -> None:
    r = catalog_dc.call("CreateImage", caller=caller(), manifest_json=json.dumps(manifest()))
    old = r.image.etag
    update(catalog_dc, r.image.uuid, {"description": "changed"})
    e = failed_update(
        catalog_dc, r.image.uuid, {"description": "lost"}, preconditions=cond(if_match=etags(old))
    )
    assert (e.code, e.http_status) == ("PreconditionFailed", 412)
    assert f"if-match '{old}'" in e.message
    e = failed_update(catalog_dc, r.image.uuid, {"name": "x"}, preconditions=cond(if_match=etags("garbage")))
    assert e.code == "PreconditionFailed"


def test_if_match_checked_before_body(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    e = failed_update(catalog_dc, img["uuid"], {}, preconditions=cond(if_match=etags("nope")))
    assert e.code == "PreconditionFailed"


def test_if_none_match_on_update_is_412(catalog_dc: Catalog) -> None:
    r = catalog_dc.call("CreateImage", caller=caller(), manifest_json=json.dumps(manifest()))
    e = failed_update(
        catalog_dc, r.image.uuid, {"description": "x"}, preconditions=cond(if_none_match=etags(r.image.etag))
    )
    assert (e.code, e.http_status) == ("PreconditionFailed", 412)
    update(catalog_dc, r.image.uuid, {"description": "x"}, preconditions=cond(if_none_match=etags("other")))


def test_etag_depends_on_view(catalog_channels: Catalog) -> None:
    img = catalog_channels.create(manifest(public=True))
    v2 = catalog_channels.call("GetImage", caller=caller(), uuid=img["uuid"]).image.etag
    v1 = catalog_channels.call(
        "GetImage", caller=caller(), view=common_pb2.ImageView(include_channels=False), uuid=img["uuid"]
    ).image.etag
    assert v1 != v2
    # If-Match compares with the etag of the request's view
    before = snapshot(catalog_channels, img["uuid"])
    e = catalog_channels.error(
        "UpdateImage",
        caller=caller(),
        view=common_pb2.ImageView(include_channels=False),
        uuid=img["uuid"],
        update_json='{"description": "x"}',
        preconditions=cond(if_match=etags(v2)),
    )
    assert e.code == "PreconditionFailed"
    assert snapshot(catalog_channels, img["uuid"]) == before
    catalog_channels.call(
        "UpdateImage",
        caller=caller(),
        view=common_pb2.ImageView(include_channels=False),
        uuid=img["uuid"],
        update_json='{"description": "x"}',
        preconditions=cond(if_match=etags(v1)),
    )


def test_channels_update_on_channel_server(catalog_channels: Catalog) -> None:
    img = catalog_channels.create(manifest(public=True))
    out = view_of(update(catalog_channels, img["uuid"], {"channels": ["dev", "anything"]}))
    assert out["channels"] == ["dev", "anything"]  # not checked against the configured list
    e = failed_update(catalog_channels, img["uuid"], {"channels": "dev"})
    assert errs(e) == [("channels", "Invalid")]
