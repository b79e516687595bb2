"""AdminImportImage through gRPC (the import variant of record building, the SDC 6 upgrade)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from imgapi.v1 import common_pb2

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
from tests.catalog.grpc_support import (
    activate,
    errs,
    get_view,
    import_image,
    new_uuid,
    view_of,
)
from tests.components import FIXTURES

__all__ = ["catalog_channels", "catalog_dc", "catalog_private", "catalog_public"]

ZERO = "00000000-0000-0000-0000-000000000000"
NODEJS_UUID = "1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc"
UBUNTU_UUID = "583287ae-366b-11e2-aea4-bf6c552eb39b"


def imanifest(**over: Any) -> dict[str, Any]:
    u = over.pop("uuid", None) or new_uuid()
    return manifest(v=2, uuid=u, **over)


def fixture_json(name: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return out


def import_error(cat: Catalog, uuid: str, body: Any, account: str = "", channel: str = "", **kw: Any) -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return cat.error(
        "AdminImportImage", caller=caller(account, channel), view=V2, uuid=uuid, manifest_json=text, **kw
    )


def test_import_keeps_uuid_published_at_urn(catalog_dc: Catalog) -> None:
    m = imanifest(published_at="2012-10-11T14:40:57.936Z", urn="sdc:sdc:x:1", disabled=True, acl=[LUKE])
    r = import_image(catalog_dc, m["uuid"], m)
    out = view_of(r)
    assert out["uuid"] == m["uuid"] and out["published_at"] == m["published_at"]
    assert out["urn"] == "sdc:sdc:x:1" and out["state"] == "unactivated" and out["disabled"] is True
    assert out["acl"] == [LUKE] and r.image.revision == 1
    assert get_view(catalog_dc, m["uuid"]) == out
    act = activate(catalog_dc, m["uuid"])
    assert act["published_at"] == "2012-10-11T14:40:57.936Z" and act["state"] == "disabled"


def test_import_ignores_state_files_channels(catalog_dc: Catalog) -> None:
    m = imanifest(state="active", files=[{"sha1": "a", "size": 1, "compression": "gzip"}], icon=False)
    out = view_of(import_image(catalog_dc, m["uuid"], m))
    assert out["state"] == "unactivated" and out["files"] == []


def test_operator_only_first(catalog_dc: Catalog) -> None:
    e = import_error(catalog_dc, new_uuid(), "", account=VADER)
    assert (e.code, e.http_status) == ("OperatorOnly", 403)
    assert e.message == "this endpoint may only be called by an operator"
    assert "errors" not in e.body()


def test_uuid_mismatch(catalog_dc: Catalog) -> None:
    url = new_uuid()
    body_uuid = new_uuid()
    e = import_error(catalog_dc, url, imanifest(uuid=body_uuid), check_request_only=True)
    assert (e.code, e.http_status) == ("InvalidParameter", 422)
    assert errs(e) == [("uuid", "Invalid")]
    assert e.message == f'URL UUID, "{url}" and body UUID, "{body_uuid}" do not match'
    for body in ("", "{}", "[]", json.dumps(manifest(v=2))):
        e = import_error(catalog_dc, url, body)
        assert (e.code, [f for f, _ in errs(e)]) == ("InvalidParameter", ["uuid"]), body


def test_check_request_only(catalog_dc: Catalog) -> None:
    """The request's own checks pass: an empty answer, nothing imported."""
    m = imanifest()
    r = import_image(catalog_dc, m["uuid"], m, check_request_only=True)
    assert not r.HasField("image")
    assert catalog_dc.error("GetImage", caller=caller(), uuid=m["uuid"]).code == "ResourceNotFound"
    e = import_error(catalog_dc, m["uuid"], m, account=VADER, check_request_only=True)
    assert e.code == "OperatorOnly"
    assert view_of(import_image(catalog_dc, m["uuid"], m, skip_owner_check=False))["uuid"] == m["uuid"]


def test_conflict_409(catalog_dc: Catalog) -> None:
    m = imanifest()
    import_image(catalog_dc, m["uuid"], m)
    before = get_view(catalog_dc, m["uuid"])
    e = import_error(catalog_dc, m["uuid"], dict(m, name="other"))
    assert (e.code, e.http_status) == ("ImageUuidAlreadyExists", 409)
    assert e.message == f'image uuid "{m["uuid"]}" already exists'
    assert get_view(catalog_dc, m["uuid"]) == before
    # an image made by CreateImage conflicts too
    created = catalog_dc.create(manifest())
    e = import_error(catalog_dc, created["uuid"], imanifest(uuid=created["uuid"]))
    assert e.code == "ImageUuidAlreadyExists"


def _placeholder(cat: Catalog, state: str) -> str:
    uuid = new_uuid()
    cat.seed(
        {
            "v": 2,
            "uuid": uuid,
            "owner": VADER,
            "name": "placeholder",
            "version": "1",
            "state": state,
            "activated": False,
            "disabled": False,
            "public": False,
            "type": "null",
            "os": "null",
            "files": [],
            "acl": [],
            "expires_at": "2099-01-01T00:00:00.000Z",
            **({"error": {"message": "boom"}} if state == "failed" else {}),
        }
    )
    return uuid


def test_import_replaces_creating_placeholder(catalog_dc: Catalog) -> None:
    uuid = _placeholder(catalog_dc, "creating")
    ph = get_view(catalog_dc, uuid)
    assert ph["state"] == "creating" and "type" not in ph and "os" not in ph
    out = view_of(import_image(catalog_dc, uuid, imanifest(uuid=uuid, name="real")))
    assert out["state"] == "unactivated" and out["name"] == "real" and out["type"] == "zone-dataset"
    # from a source: no placeholder exception
    uuid2 = _placeholder(catalog_dc, "creating")
    e = import_error(catalog_dc, uuid2, imanifest(uuid=uuid2), from_source=True)
    assert (e.code, e.http_status) == ("ImageUuidAlreadyExists", 409)


def test_import_over_failed_placeholder_conflicts(catalog_dc: Catalog) -> None:
    uuid = _placeholder(catalog_dc, "failed")
    assert get_view(catalog_dc, uuid)["error"] == {"message": "boom"}
    e = import_error(catalog_dc, uuid, imanifest(uuid=uuid))
    assert (e.code, e.http_status) == ("ImageUuidAlreadyExists", 409)


def test_origin_must_exist(catalog_dc: Catalog) -> None:
    m = imanifest(origin=new_uuid())
    e = import_error(catalog_dc, m["uuid"], m)
    assert (e.code, e.http_status) == ("OriginDoesNotExist", 422)
    base = imanifest()
    import_image(catalog_dc, base["uuid"], base)
    m2 = imanifest(origin=base["uuid"])
    assert view_of(import_image(catalog_dc, m2["uuid"], m2))["origin"] == base["uuid"]


def test_import_validation(catalog_dc: Catalog) -> None:
    m = imanifest()
    del m["v"]  # not defaulted on import
    e = import_error(catalog_dc, m["uuid"], m)
    assert (e.code, errs(e)) == ("ValidationFailed", [("v", "MissingParameter")])
    m = imanifest(published_at=1234)
    e = import_error(catalog_dc, m["uuid"], m)
    assert (e.code, errs(e)) == ("InvalidParameter", [("published_at", "Invalid")])
    for bad in ("2012-10-11", "2012-10-11T14:40:57.93Z", "2012-10-11T14:40:57+00:00"):
        m = imanifest(published_at=bad)
        e = import_error(catalog_dc, m["uuid"], m)
        assert (e.code, errs(e)) == ("ValidationFailed", [("published_at", "Invalid")]), bad
    m = imanifest(icon=True)  # manifests from another IMGAPI carry icon: true
    e = import_error(catalog_dc, m["uuid"], m)
    assert (e.code, errs(e)) == ("ValidationFailed", [("icon", "Invalid")])
    m = imanifest(activated=True, expires_at="x", bogus=1)
    e = import_error(catalog_dc, m["uuid"], m)
    assert (e.code, errs(e)) == (
        "InvalidParameter",
        [("activated", "Invalid"), ("expires_at", "Invalid"), ("bogus", "Invalid")],
    )
    m = imanifest(name="bad!", os="beos")
    e = import_error(catalog_dc, m["uuid"], m)
    assert (e.code, e.message) == ("ValidationFailed", "invalid image data: name, os")


# --- owner rewrite per mode ------------------------------------------------------------------------


def test_owner_rewrite_dc(catalog_dc: Catalog) -> None:
    m = imanifest(owner=ZERO)
    assert view_of(import_image(catalog_dc, m["uuid"], m))["owner"] == SDC
    m = imanifest(owner=LUKE)
    assert view_of(import_image(catalog_dc, m["uuid"], m))["owner"] == LUKE


@pytest.mark.parametrize("mode", ["public", "private"])
def test_owner_rewrite_other_modes(catalog_public: Catalog, catalog_private: Catalog, mode: str) -> None:
    cat = catalog_public if mode == "public" else catalog_private
    m = imanifest(owner=LUKE, public=mode == "public")
    assert view_of(import_image(cat, m["uuid"], m))["owner"] == ZERO


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def catalog_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    tmp = tmp_path_factory.mktemp("registry")
    reg = tmp / "accounts.txt"
    reg.write_text(f"{VADER}\n{SDC}\n")
    with (
        database(request.param, tmp) as url,
        running_catalog(url, request.param, mode="dc", admin_uuid=SDC, account_registry_file=reg) as cat,
    ):
        yield cat


def test_owner_check_and_skip(catalog_registry: Catalog) -> None:
    m = imanifest(owner=LUKE)
    e = import_error(catalog_registry, m["uuid"], m)
    assert (e.code, e.http_status) == ("OwnerDoesNotExist", 422)
    e = import_error(catalog_registry, m["uuid"], m, skip_owner_check=False)
    assert e.code == "OwnerDoesNotExist"
    assert view_of(import_image(catalog_registry, m["uuid"], m, skip_owner_check=True))["owner"] == LUKE
    m = imanifest(owner=ZERO)  # replaced by the admin, no existence check
    assert view_of(import_image(catalog_registry, m["uuid"], m))["owner"] == SDC


# --- v1 dataset manifests ------------------------------------------------------------------------


def test_upgrade_fauxnodejs_dsmanifest(catalog_dc: Catalog) -> None:
    ds = fixture_json("fauxnodejs-1.4.0.dsmanifest")
    out = view_of(import_image(catalog_dc, NODEJS_UUID, ds))
    assert out == {
        "v": 2,
        "uuid": NODEJS_UUID,
        "owner": LUKE,
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
        "urn": "sdc:sdc:nodejs:1.4.0",
        "requirements": {"networks": [{"name": "net0", "description": "public"}]},
        "users": [{"name": "root"}, {"name": "admin"}, {"name": "mongodb"}],
        "generate_passwords": True,
        "inherited_directories": ["/opt/node_service"],
    }
    assert list(out) == list(
        [k for k in ("v", "uuid", "owner", "name", "version", "state", "disabled", "public") if k in out]
        + [
            k
            for k in out
            if k not in ("v", "uuid", "owner", "name", "version", "state", "disabled", "public")
        ]
    )
    act = activate(catalog_dc, NODEJS_UUID)
    assert act["published_at"] == "2012-10-11T14:40:57.936Z"
    e = import_error(catalog_dc, NODEJS_UUID, ds)
    assert e.code == "ImageUuidAlreadyExists"


def test_upgrade_fauxubuntu_dsmanifest(catalog_dc: Catalog) -> None:
    ds = fixture_json("fauxubuntu.dsmanifest")
    out = view_of(import_image(catalog_dc, UBUNTU_UUID, ds))
    assert out["v"] == 2 and out["type"] == "zvol" and out["os"] == "linux"
    assert out["image_size"] == 16384  # string converted to a number
    assert out["cpu_type"] == "qemu64" and out["nic_driver"] == "virtio" and out["disk_driver"] == "virtio"
    assert out["requirements"] == {"networks": [{"name": "net0", "description": "public"}], "ssh_key": True}
    assert out["owner"] == "a979f956-12cb-4216-bf4c-ae73e6f14dde"
    assert out["published_at"] == "2012-11-30T11:40:03.494Z"
    assert out["public"] is True and out["urn"] == "sdc:jpc:ubuntu-12.04:2.2.1"
    for k in ("creator_uuid", "vendor_uuid", "creator_name", "cloud_name", "platform_type", "created_at"):
        assert k not in out


def test_upgrade_fauxnodejs_imgmanifest(catalog_private: Catalog) -> None:
    m = fixture_json("fauxnodejs-1.4.0.imgmanifest")
    m["public"] = False  # private server
    out = view_of(import_image(catalog_private, m["uuid"], m))
    assert out["billing_tags"] == ["xxllpromo"] and out["owner"] == ZERO


def test_upgrade_details(catalog_dc: Catalog) -> None:
    u = new_uuid()
    ds = {
        "uuid": u,
        "name": "restricted",
        "version": "1",
        "type": "zone-dataset",
        "os": "smartos",
        "creator_uuid": VADER,
        "restricted_to_uuid": LUKE,
        "disabled": "true",
        "created_at": "2012-10-11T14:40Z",
        "files": [{"path": "x.zfs.gz", "sha1": "a", "size": 1}],
    }
    out = view_of(import_image(catalog_dc, u, ds))
    assert out["owner"] == VADER and out["public"] is False and out["acl"] == [LUKE]
    assert out["disabled"] is True and out["state"] == "unactivated"
    assert out["published_at"] == "2012-10-11T14:40:00Z"
    # both creator_uuid and owner: the upgrade fails and the body is used unchanged
    u2 = new_uuid()
    bad = dict(ds, uuid=u2, owner=VADER)
    e = import_error(catalog_dc, u2, bad)
    assert e.code == "InvalidParameter"
    assert "creator_uuid" in [f for f, _ in errs(e)]
    # neither v nor creator_uuid: not upgraded, fails on v
    u3 = new_uuid()
    e = import_error(
        catalog_dc,
        u3,
        {"uuid": u3, "name": "n", "version": "1", "owner": VADER, "type": "other", "os": "other"},
    )
    assert errs(e) == [("v", "MissingParameter")]


# --- channels and the lx workaround ------------------------------------------------------------


def test_import_channels(catalog_channels: Catalog) -> None:
    m = imanifest(public=True, channels=["release"])
    out = view_of(import_image(catalog_channels, m["uuid"], m, channel="staging"))
    assert out["channels"] == ["staging"]
    m = imanifest(public=True)
    assert view_of(import_image(catalog_channels, m["uuid"], m))["channels"] == ["dev"]
    e = import_error(catalog_channels, new_uuid(), "", channel="*")
    assert (e.code, errs(e)) == ("ValidationFailed", [("channel", "Invalid")])


def _ua_import(cat: Catalog, m: dict[str, Any], ua: str) -> dict[str, Any]:
    r = cat.call(
        "AdminImportImage",
        caller=common_pb2.CallerContext(user_agent=ua),
        view=V2,
        uuid=m["uuid"],
        manifest_json=json.dumps(m),
    )
    return view_of(r)


def test_lx_min_platform_workaround(catalog_dc: Catalog) -> None:
    origin = imanifest(
        type="lx-dataset", os="linux", requirements={"min_platform": {"7.0": "20150101T000000Z"}}
    )
    import_image(catalog_dc, origin["uuid"], origin)
    mp = {"7.0": "20160101T000000Z"}

    def lx(**over: Any) -> dict[str, Any]:
        return imanifest(
            type="lx-dataset", os="linux", requirements={"min_platform": mp, "brand": "lx"}, **over
        )

    old = "imgadm/3.7.3 (node/0.10.48; OpenSSL/1.0.1)"
    out = _ua_import(catalog_dc, lx(origin=origin["uuid"]), old)
    assert out["requirements"] == {"min_platform": {"7.0": "20150101T000000Z"}, "brand": "lx"}
    out = _ua_import(catalog_dc, lx(), old)
    assert out["requirements"] == {"brand": "lx"}
    for ua in ("imgadm/3.7.4 (node)", "imgadm/4.0.0 (x)", "curl/7", "imgadm/3.7.3"):
        out = _ua_import(catalog_dc, lx(), ua)
        assert out["requirements"]["min_platform"] == mp, ua
    out = _ua_import(catalog_dc, imanifest(requirements={"min_platform": mp}), old)  # not lx
    assert out["requirements"]["min_platform"] == mp
