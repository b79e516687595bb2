"""Files and icons through gRPC: PrepareImageUpload (the checks before a file or icon upload),
AttachImageFile (after it), DetachImageFile, AttachImageIcon, DetachImageIcon."""

from __future__ import annotations

import json
from typing import Any

import pytest
from imgapi.v1 import catalog_pb2, common_pb2

from tests.catalog.conftest import EMPEROR, LUKE, V2, VADER, Catalog, caller, catalog_dc, manifest
from tests.catalog.grpc_support import (
    ADMIN_VIEW,
    activate,
    attach_file,
    create_active,
    errs,
    get,
    get_view,
    http_date,
    icon_msg,
    new_uuid,
    snapshot,
    view_of,
)

__all__ = ["catalog_dc"]

FILE = catalog_pb2.PrepareImageUploadRequest.KIND_FILE
ICON = catalog_pb2.PrepareImageUploadRequest.KIND_ICON


def prepare(cat: Catalog, uuid: str, account: str = "", **kw: Any) -> Any:
    return cat.call("PrepareImageUpload", caller=caller(account), uuid=uuid, **kw)


def prepare_error(cat: Catalog, uuid: str, account: str = "", **kw: Any) -> Any:
    return cat.error("PrepareImageUpload", caller=caller(account), uuid=uuid, **kw)


# --- PrepareImageUpload: checks in IMGAPI's order --------------------------------------------------


def test_prepare_file_ok(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    r = prepare(catalog_dc, img["uuid"], kind=FILE, compression="gzip")
    assert r.max_size == 21474836480 and r.stor == "local"
    assert r.image.uuid == img["uuid"]
    r = prepare(catalog_dc, img["uuid"], VADER, kind=FILE, compression="none")
    assert r.max_size == 21474836480
    r = prepare(catalog_dc, img["uuid"], kind=FILE, compression="xz", storage="manta")
    assert r.stor == "local"  # a valid storage= is a preference only: files go to the default store


def test_prepare_file_order(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest(acl=[LUKE]))
    active = create_active(catalog_dc, manifest(acl=[LUKE]))
    # 1. visibility
    e = prepare_error(catalog_dc, new_uuid(), kind=FILE)
    assert (e.code, e.http_status) == ("ResourceNotFound", 404)
    e = prepare_error(catalog_dc, img["uuid"], "nope", kind=FILE)
    assert (e.code, errs(e)) == ("InvalidParameter", [("account", "Invalid")])
    e = prepare_error(catalog_dc, img["uuid"], LUKE, kind=FILE)  # unactivated: invisible to luke
    assert e.code == "ResourceNotFound"
    # 2. owner before everything else
    e = prepare_error(catalog_dc, active["uuid"], LUKE, kind=FILE, compression="bogus")
    assert (e.code, e.http_status) == ("NotImageOwner", 422)
    # 3. ImageFilesImmutable before compression
    e = prepare_error(catalog_dc, active["uuid"], kind=FILE)
    assert (e.code, e.http_status) == ("ImageFilesImmutable", 422)
    assert e.message == f"cannot modify files on activated image {active['uuid']}"
    # 4. compression
    e = prepare_error(catalog_dc, img["uuid"], kind=FILE, storage="bogus")
    assert (e.code, e.http_status) == ("InvalidParameter", 422)
    assert e.body()["errors"] == [{"field": "compression", "code": "Missing"}]
    assert e.message == 'missing "compression"'
    e = prepare_error(catalog_dc, img["uuid"], kind=FILE, compression="zip", storage="bogus")
    assert errs(e) == [("compression", "Invalid")]
    assert e.message == 'invalid compression "zip" (must be one of gzip, bzip2, xz, none)'
    # 5. storage
    e = prepare_error(
        catalog_dc,
        img["uuid"],
        VADER,
        kind=FILE,
        compression="gzip",
        storage="local",
    )
    assert e.body()["errors"] == [
        {
            "field": "storage",
            "code": "NotAllowed",
            "message": "Parameter cannot be specified by non-operators",
        }
    ]
    e = prepare_error(catalog_dc, img["uuid"], kind=FILE, compression="gzip", storage="s3")
    assert (e.code, errs(e)) == ("InvalidParameter", [("storage", "Invalid")])


def test_prepare_icon(catalog_dc: Catalog) -> None:
    active = create_active(catalog_dc, manifest(acl=[LUKE]))
    uuid = active["uuid"]
    # icons are allowed in any state
    for ct in ("image/jpeg", "image/gif", "image/png"):
        r = prepare(catalog_dc, uuid, kind=ICON, content_type=ct)
        assert r.max_size == 131072
    e = prepare_error(catalog_dc, uuid, LUKE, kind=ICON, content_type="text/plain")
    assert e.code == "NotImageOwner"
    for ct in ("text/plain", "image/jpeg; charset=x", "IMAGE/PNG", ""):
        e = prepare_error(catalog_dc, uuid, kind=ICON, content_type=ct, storage="bogus")
        assert (e.code, e.http_status) == ("Upload", 400), ct
        assert "must be one of image/jpeg, image/gif, image/png" in e.message
    e = prepare_error(catalog_dc, uuid, VADER, kind=ICON, content_type="image/png", storage="local")
    assert errs(e) == [("storage", "NotAllowed")]
    e = prepare_error(catalog_dc, uuid, kind=ICON, content_type="image/png", storage="x")
    assert errs(e) == [("storage", "Invalid")]


# --- attach / detach --------------------------------------------------------------------------------


def test_attach_file_replaces_previous(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    r1 = attach_file(catalog_dc, img["uuid"], blob_id="blob-one", dataset_guid="1234")
    assert view_of(r1)["files"] == [
        {
            "sha1": "1b4240b257a89a190fd1a3c9eccffc7ccc951352",
            "size": 22,
            "compression": "bzip2",
            "dataset_guid": "1234",
        }
    ]
    assert list(r1.orphaned_blob_ids) == []
    assert r1.image.files[0].content_md5 == "J6sttoCHpi4ByXyf3LrjXw=="
    assert r1.image.files[0].mtime and r1.image.files[0].blob_id == "blob-one"
    assert r1.image.state == "unactivated"
    r2 = attach_file(catalog_dc, img["uuid"], blob_id="blob-two", sha1="f" * 40, size=65, compression="gzip")
    assert list(r2.orphaned_blob_ids) == ["blob-one"]
    assert view_of(r2)["files"] == [{"sha1": "f" * 40, "size": 65, "compression": "gzip"}]
    # stor only in the admin view
    admin = view_of(get(catalog_dc, img["uuid"], view=ADMIN_VIEW))
    assert admin["files"][0] == {"sha1": "f" * 40, "size": 65, "compression": "gzip", "stor": "local"}
    assert list(admin["files"][0]) == ["sha1", "size", "compression", "stor"]


def test_attach_file_owner_checks(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    e = catalog_dc.error("AttachImageFile", caller=caller(LUKE), view=V2, uuid=img["uuid"], file=icon_file())
    assert e.code == "ResourceNotFound"
    attach_file(catalog_dc, img["uuid"], account=VADER)


def icon_file() -> Any:
    from tests.catalog.grpc_support import file_msg

    return file_msg()


def test_attach_after_activation(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest())
    before = snapshot(catalog_dc, img["uuid"])
    e = catalog_dc.error("AttachImageFile", caller=caller(), view=V2, uuid=img["uuid"], file=icon_file())
    assert (e.code, e.http_status) == ("ImageAlreadyActivated", 422)
    e = catalog_dc.error("DetachImageFile", caller=caller(), view=V2, uuid=img["uuid"])
    assert (e.code, e.http_status) == ("ImageFilesImmutable", 422)
    assert snapshot(catalog_dc, img["uuid"]) == before


def test_detach_file(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    attach_file(catalog_dc, img["uuid"], blob_id="detach-me")
    r = catalog_dc.call("DetachImageFile", caller=caller(), view=V2, uuid=img["uuid"])
    assert view_of(r)["files"] == [] and list(r.orphaned_blob_ids) == ["detach-me"]
    e = catalog_dc.error("ActivateImage", caller=caller(), view=V2, uuid=img["uuid"])
    assert e.code == "NoActivationNoFile"


def test_shared_blob_is_not_orphaned(catalog_dc: Catalog) -> None:
    a = catalog_dc.create(manifest())
    b = catalog_dc.create(manifest())
    attach_file(catalog_dc, a["uuid"], blob_id="shared-blob")
    attach_file(catalog_dc, b["uuid"], blob_id="shared-blob")
    r = catalog_dc.call("DetachImageFile", caller=caller(), view=V2, uuid=a["uuid"])
    assert list(r.orphaned_blob_ids) == []
    d = catalog_dc.call("DeleteImage", caller=caller(), uuid=b["uuid"])
    assert d.deleted and list(d.orphaned_blob_ids) == ["shared-blob"]


def test_icon_attach_detach(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest())
    uuid = img["uuid"]
    e = catalog_dc.error("DetachImageIcon", caller=caller(), view=V2, uuid=uuid)
    assert (e.code, e.http_status) == ("ResourceNotFound", 404)
    assert e.message == f'image "{uuid}" has no icon'
    r = catalog_dc.call("AttachImageIcon", caller=caller(), view=V2, uuid=uuid, icon=icon_msg("icon-1"))
    out = view_of(r)
    assert out["icon"] is True and out["state"] == "active"
    assert list(out).index("icon") > list(out).index("files")
    assert r.image.icon.content_type == "image/jpeg" and r.image.icon.mtime
    r = catalog_dc.call("AttachImageIcon", caller=caller(), view=V2, uuid=uuid, icon=icon_msg("icon-2"))
    assert list(r.orphaned_blob_ids) == ["icon-1"]
    e = catalog_dc.error("DetachImageIcon", caller=caller(LUKE), view=V2, uuid=uuid)
    assert e.code == "ResourceNotFound"  # private image, luke cannot see it
    r = catalog_dc.call("DetachImageIcon", caller=caller(VADER), view=V2, uuid=uuid)
    assert "icon" not in view_of(r) and list(r.orphaned_blob_ids) == ["icon-2"]
    assert view_of(r) == {k: v for k, v in out.items() if k != "icon"}


def test_icon_owner_check(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest(public=True))
    e = catalog_dc.error(
        "AttachImageIcon", caller=caller(EMPEROR), view=V2, uuid=img["uuid"], icon=icon_msg()
    )
    assert (e.code, e.http_status) == ("NotImageOwner", 422)


def test_delete_returns_file_and_icon_blobs(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    attach_file(catalog_dc, img["uuid"], blob_id="del-file")
    catalog_dc.call("AttachImageIcon", caller=caller(), view=V2, uuid=img["uuid"], icon=icon_msg("del-icon"))
    r = catalog_dc.call("DeleteImage", caller=caller(), uuid=img["uuid"])
    assert r.deleted and sorted(r.orphaned_blob_ids) == ["del-file", "del-icon"]


def test_file_conditionals_use_file_mtime(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    attach_file(catalog_dc, img["uuid"])
    subject = common_pb2.Preconditions.SUBJECT_FILE
    r = get(
        catalog_dc,
        img["uuid"],
        preconditions=common_pb2.Preconditions(
            if_modified_since=http_date("Fri, 31 Dec 9999 23:59:59 GMT"), subject=subject
        ),
    )
    assert r.not_modified
    r = get(
        catalog_dc,
        img["uuid"],
        preconditions=common_pb2.Preconditions(
            if_modified_since=http_date("Thu, 01 Jan 1970 00:00:00 GMT"), subject=subject
        ),
    )
    assert not r.not_modified
    e = catalog_dc.error(
        "GetImage",
        caller=caller(),
        uuid=img["uuid"],
        preconditions=common_pb2.Preconditions(
            if_unmodified_since=http_date("Thu, 01 Jan 1970 00:00:00 GMT"), subject=subject
        ),
    )
    assert (e.code, e.http_status) == ("PreconditionFailed", 412)
    # image subject: no Last-Modified, date conditions are not evaluated
    r = get(
        catalog_dc,
        img["uuid"],
        preconditions=common_pb2.Preconditions(
            if_unmodified_since=http_date("Thu, 01 Jan 1970 00:00:00 GMT")
        ),
    )
    assert not r.not_modified


@pytest.mark.parametrize("kind", ["file", "icon"])
def test_activation_after_upload_keeps_everything(catalog_dc: Catalog, kind: str) -> None:
    img = catalog_dc.create(manifest(tags={"a": 1}))
    if kind == "icon":
        catalog_dc.call("AttachImageIcon", caller=caller(), view=V2, uuid=img["uuid"], icon=icon_msg())
    out = activate(catalog_dc, img["uuid"])
    assert out["tags"] == {"a": 1}
    assert ("icon" in out) == (kind == "icon")
    assert get_view(catalog_dc, img["uuid"]) == out
    assert json.loads(get(catalog_dc, img["uuid"]).image.view_json) == out
