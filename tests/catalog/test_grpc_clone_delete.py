"""CloneImage and DeleteImage through gRPC."""

from __future__ import annotations

import json
import re

from imgapi_common.errors import ImgapiError
from tests.catalog.conftest import (
    EMPEROR,
    LUKE,
    SDC,
    V2,
    VADER,
    Catalog,
    caller,
    catalog_dc,
    catalog_public,
    manifest,
)
from tests.catalog.grpc_support import (
    attach_file,
    create_active,
    errs,
    get,
    get_view,
    icon_msg,
    import_image,
    list_images,
    new_uuid,
    snapshot,
    view_of,
)

__all__ = ["catalog_dc", "catalog_public"]

PUBLISHED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def clone(cat: Catalog, uuid: str, account: str) -> dict[str, object]:
    return view_of(cat.call("CloneImage", caller=caller(account), view=V2, uuid=uuid))


def clone_error(cat: Catalog, uuid: str, account: str) -> ImgapiError:
    before = snapshot(cat, uuid)
    e = cat.error("CloneImage", caller=caller(account), view=V2, uuid=uuid)
    assert snapshot(cat, uuid) == before
    return e


# --- CloneImage ------------------------------------------------------------------------------


def test_clone_simple(catalog_dc: Catalog) -> None:
    m = manifest(
        acl=[LUKE, EMPEROR],
        tags={"a": 1},
        requirements={"min_ram": 512},
        description="src",
        billing_tags=["bt"],
    )
    src = create_active(catalog_dc, m)
    import_uuid = new_uuid()  # give the source an urn and an icon, which are not copied
    import_image(catalog_dc, import_uuid, dict(m, v=2, uuid=import_uuid, urn="sdc:x", owner=VADER))
    attach_file(catalog_dc, import_uuid)
    catalog_dc.call("ActivateImage", caller=caller(), uuid=import_uuid)
    catalog_dc.call("AttachImageIcon", caller=caller(), uuid=import_uuid, icon=icon_msg())
    for source in (src, get_view(catalog_dc, import_uuid)):
        c = clone(catalog_dc, str(source["uuid"]), LUKE)
        assert c["uuid"] != source["uuid"] and c["owner"] == LUKE
        assert "acl" not in c and "origin" not in c and "icon" not in c and "urn" not in c
        assert c["state"] == "active" and c["disabled"] is False
        assert isinstance(c["published_at"], str) and PUBLISHED.match(c["published_at"])
        assert c["files"] == source["files"]
        for k in ("name", "version", "tags", "requirements", "description", "billing_tags", "type", "os"):
            assert c[k] == source[k], k
        assert get_view(catalog_dc, str(c["uuid"]), LUKE) == c
        # cloning twice gives two distinct clones; a clone cannot be cloned again by its owner
        c2 = clone(catalog_dc, str(source["uuid"]), LUKE)
        assert c2["uuid"] != c["uuid"]
        e = clone_error(catalog_dc, str(c["uuid"]), LUKE)
        assert e.code == "ImageNotShared"


def test_clone_chain(catalog_dc: Catalog) -> None:
    base = create_active(catalog_dc, manifest(owner=SDC, public=True, name="base"))
    l1 = create_active(catalog_dc, manifest(origin=base["uuid"], name="l1", acl=[LUKE]))
    l2 = create_active(catalog_dc, manifest(origin=l1["uuid"], name="l2", acl=[LUKE]))
    l3 = create_active(catalog_dc, manifest(origin=l2["uuid"], name="l3", acl=[LUKE], disabled=True))
    c3 = clone(catalog_dc, l3["uuid"], LUKE)
    assert c3["name"] == "l3" and c3["disabled"] is True and c3["state"] == "disabled"
    c2 = get_view(catalog_dc, str(c3["origin"]), LUKE)
    c1 = get_view(catalog_dc, str(c2["origin"]), LUKE)
    assert (c2["name"], c1["name"]) == ("l2", "l1")
    assert c1["origin"] == base["uuid"]  # the admin base stays the origin
    for c in (c1, c2):
        assert c["owner"] == LUKE and c["disabled"] is True and c["state"] == "disabled"
    mine = {i["name"] for i in list_images(catalog_dc, LUKE, owner=LUKE, state="all")}
    assert {"l1", "l2", "l3"} <= mine
    # clones of an operator (zero uuid) base chain stop there too
    zero_base = new_uuid()
    import_image(
        catalog_dc, zero_base, manifest(v=2, uuid=zero_base, owner="00000000-0000-0000-0000-000000000000")
    )
    # dc mode rewrites the zero owner to the admin uuid on import
    assert get_view(catalog_dc, zero_base)["owner"] == SDC


def test_clone_disabled_source(catalog_dc: Catalog) -> None:
    src = create_active(catalog_dc, manifest(acl=[LUKE]))
    catalog_dc.call("DisableImage", caller=caller(), uuid=src["uuid"])
    c = clone(catalog_dc, src["uuid"], LUKE)
    assert c["disabled"] is True and c["state"] == "disabled"


def test_clone_errors(catalog_dc: Catalog) -> None:
    unact = catalog_dc.create(manifest(acl=[LUKE]))
    e = clone_error(catalog_dc, unact["uuid"], VADER)
    assert (e.code, e.message) == ("ValidationFailed", "image is not active")
    assert errs(e) == [("active", "Invalid")]
    # luke cannot even see the unactivated image
    assert clone_error(catalog_dc, unact["uuid"], LUKE).code == "ResourceNotFound"
    shared = create_active(catalog_dc, manifest(acl=[LUKE]))
    for account in (VADER, EMPEROR):  # the owner is not on the ACL; emperor cannot see it
        e = clone_error(catalog_dc, shared["uuid"], account)
        assert e.code == ("ImageNotShared" if account == VADER else "ResourceNotFound")
    public = create_active(catalog_dc, manifest(public=True))
    e = clone_error(catalog_dc, public["uuid"], LUKE)
    assert (e.code, e.http_status) == ("ImageNotShared", 422)
    for bad in ("", "nope"):
        e = clone_error(catalog_dc, shared["uuid"], bad)
        assert e.code == "InvalidParameter"
        assert errs(e) == [("account", "Invalid")]
    docker = create_active(catalog_dc, manifest(type="docker", os="linux", acl=[LUKE]))
    e = clone_error(catalog_dc, docker["uuid"], LUKE)
    assert (e.code, errs(e)) == ("ValidationFailed", [("type", "Invalid")])
    e = catalog_dc.error("CloneImage", caller=caller(LUKE), uuid=new_uuid())
    assert e.code == "ResourceNotFound"


def test_clone_origin_without_file_fails_cleanly(catalog_dc: Catalog) -> None:
    """A user-owned origin without a file cannot become an activated clone: the clone fails and
    every clone created so far is rolled back (no invisible invalid record is stored)."""
    base = catalog_dc.create(manifest())
    child = create_active(catalog_dc, manifest(origin=base["uuid"], acl=[LUKE]))
    owner_before = {i["uuid"] for i in list_images(catalog_dc, owner=LUKE, state="all")}
    e = clone_error(catalog_dc, child["uuid"], LUKE)
    assert (e.code, e.http_status) == ("NoActivationNoFile", 422)
    assert {i["uuid"] for i in list_images(catalog_dc, owner=LUKE, state="all")} == owner_before


def test_clone_user_origin_with_file(catalog_dc: Catalog) -> None:
    base = create_active(catalog_dc, manifest(acl=[EMPEROR]))
    child = create_active(catalog_dc, manifest(origin=base["uuid"], acl=[LUKE]))
    c = clone(catalog_dc, child["uuid"], LUKE)
    parent = get_view(catalog_dc, str(c["origin"]), LUKE)
    assert parent["name"] == base["name"] and parent["owner"] == LUKE and "origin" not in parent
    assert parent["state"] == "disabled"


def test_clone_only_in_dc_mode(catalog_public: Catalog) -> None:
    img = create_active(catalog_public, manifest(public=True, acl=[LUKE]))
    e = catalog_public.error("CloneImage", caller=caller(LUKE), uuid=img["uuid"])
    assert (e.code, e.http_status) == ("ResourceNotFound", 404)


# --- DeleteImage -----------------------------------------------------------------------------------


def test_delete(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest())
    r = catalog_dc.call("DeleteImage", caller=caller(VADER), uuid=img["uuid"])
    assert r.deleted and len(r.orphaned_blob_ids) == 1
    e = catalog_dc.error("GetImage", caller=caller(), uuid=img["uuid"])
    assert e.code == "ResourceNotFound"
    e = catalog_dc.error("DeleteImage", caller=caller(), uuid=img["uuid"])
    assert (e.code, e.http_status) == ("ResourceNotFound", 404)


def test_delete_errors_in_order(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest(acl=[LUKE]))
    u = img["uuid"]
    before = snapshot(catalog_dc, u)
    e = catalog_dc.error("DeleteImage", caller=caller("bad"), uuid=u, force_all_channels=True)
    assert (e.code, errs(e)) == ("InvalidParameter", [("account", "Invalid")])
    e = catalog_dc.error("DeleteImage", caller=caller(EMPEROR), uuid=u, force_all_channels=True)
    assert e.code == "ResourceNotFound"
    e = catalog_dc.error("DeleteImage", caller=caller(LUKE), uuid=u, force_all_channels=True)
    assert (e.code, e.http_status) == ("NotImageOwner", 422)
    assert snapshot(catalog_dc, u) == before
    # (a malformed force_all_channels is refused at the REST edge, after these: tests/gateway)


def test_delete_refused_with_dependents(catalog_dc: Catalog) -> None:
    base = create_active(catalog_dc, manifest())
    child = catalog_dc.create(manifest(origin=base["uuid"], owner=LUKE))  # any state, any owner
    before = snapshot(catalog_dc, base["uuid"])
    e = catalog_dc.error("DeleteImage", caller=caller(), uuid=base["uuid"])
    assert (e.code, e.http_status) == ("ImageHasDependentImages", 422)
    assert e.message == f'image "{base["uuid"]}" has 1 dependent incremental image(s): {child["uuid"]}'
    assert snapshot(catalog_dc, base["uuid"]) == before
    catalog_dc.call("DeleteImage", caller=caller(), uuid=child["uuid"])
    assert catalog_dc.call("DeleteImage", caller=caller(), uuid=base["uuid"]).deleted


def test_delete_dependents_message_truncated(catalog_dc: Catalog) -> None:
    base = catalog_dc.create(manifest())
    kids = sorted(catalog_dc.create(manifest(origin=base["uuid"]))["uuid"] for _ in range(12))
    e = catalog_dc.error("DeleteImage", caller=caller(), uuid=base["uuid"])
    assert e.code == "ImageHasDependentImages"
    prefix = f'image "{base["uuid"]}" has 12 dependent incremental image(s): '
    assert e.message.startswith(prefix)
    listed = e.message[len(prefix) :]
    assert listed.endswith(", and 7 more...")
    shown = listed[: -len(", and 7 more...")].split(", ")
    assert len(shown) == 5 and set(shown) <= set(kids)
    nine = catalog_dc.create(manifest())
    kids9 = [catalog_dc.create(manifest(origin=nine["uuid"]))["uuid"] for _ in range(9)]
    e = catalog_dc.error("DeleteImage", caller=caller(), uuid=nine["uuid"])
    assert set(e.message.split(": ", 1)[1].split(", ")) == set(kids9)


def test_update_origin_creates_dependency(catalog_dc: Catalog) -> None:
    base = catalog_dc.create(manifest())
    other = catalog_dc.create(manifest())
    catalog_dc.call(
        "UpdateImage", caller=caller(), uuid=other["uuid"], update_json=json.dumps({"origin": base["uuid"]})
    )
    e = catalog_dc.error("DeleteImage", caller=caller(), uuid=base["uuid"])
    assert e.code == "ImageHasDependentImages"
    catalog_dc.call(
        "UpdateImage", caller=caller(), uuid=other["uuid"], update_json=json.dumps({"origin": None})
    )
    assert catalog_dc.call("DeleteImage", caller=caller(), uuid=base["uuid"]).deleted
    assert get(catalog_dc, other["uuid"]).image.uuid == other["uuid"]
