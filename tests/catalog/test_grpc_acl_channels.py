"""ACLs, channels (ListChannels, ChannelAddImage, ResolveChannel) and
GetServerConfig through gRPC."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.catalog.conftest import (
    EMPEROR,
    LUKE,
    SDC,
    V2,
    VADER,
    Catalog,
    caller,
    catalog_channels,
    catalog_dc,
    catalog_public,
    manifest,
)
from tests.catalog.grpc_support import (
    create_active,
    errs,
    get_view,
    list_uuids,
    new_uuid,
    snapshot,
    view_of,
)

__all__ = ["catalog_channels", "catalog_dc", "catalog_public"]


def acl(cat: Catalog, uuid: str, body: Any, add: bool = True, account: str = "", channel: str = "") -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return cat.call(
        "AddImageAcl" if add else "RemoveImageAcl",
        caller=caller(account, channel),
        view=V2,
        uuid=uuid,
        acl_json=text,
    )


def acl_error(cat: Catalog, uuid: str, body: Any, add: bool = True, account: str = "") -> Any:
    before = snapshot(cat, uuid)
    text = body if isinstance(body, str) else json.dumps(body)
    e = cat.error(
        "AddImageAcl" if add else "RemoveImageAcl", caller=caller(account), view=V2, uuid=uuid, acl_json=text
    )
    assert snapshot(cat, uuid) == before
    return e


# --- ACL ---------------------------------------------------------------------------------------


def test_acl_add_remove(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest(acl=[LUKE]))
    u = img["uuid"]
    x, y = new_uuid(), new_uuid()
    out = view_of(acl(catalog_dc, u, [EMPEROR, LUKE, x, EMPEROR]))
    assert out["acl"] == [LUKE, EMPEROR, x]
    out = view_of(acl(catalog_dc, u, [y], account=VADER))
    assert out["acl"] == [LUKE, EMPEROR, x, y]
    out = view_of(acl(catalog_dc, u, [EMPEROR, new_uuid(), x], add=False))
    assert out["acl"] == [LUKE, y]
    out = view_of(acl(catalog_dc, u, [], add=True))
    assert out["acl"] == [LUKE, y]
    out = view_of(acl(catalog_dc, u, [LUKE, y], add=False))
    assert "acl" not in out
    out = view_of(acl(catalog_dc, u, [LUKE], add=False))  # no ACL: no-op
    assert "acl" not in out
    assert get_view(catalog_dc, u) == out


def test_acl_changes_visibility(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest())
    u = img["uuid"]
    e = catalog_dc.error("GetImage", caller=caller(EMPEROR), uuid=u)
    assert e.code == "ResourceNotFound"
    acl(catalog_dc, u, [EMPEROR])
    assert get_view(catalog_dc, u, EMPEROR)["uuid"] == u
    assert u in list_uuids(catalog_dc, EMPEROR, owner=VADER)
    acl(catalog_dc, u, [EMPEROR], add=False)
    assert u not in list_uuids(catalog_dc, EMPEROR, owner=VADER)


@pytest.mark.parametrize("body", ["", "{}", '"' + LUKE + '"', "null", "42", '{"0": "x"}'])
def test_acl_not_an_array(catalog_dc: Catalog, body: str) -> None:
    img = catalog_dc.create(manifest(acl=[LUKE]))
    for add in (True, False):
        e = acl_error(catalog_dc, img["uuid"], body, add=add)
        assert (e.code, e.http_status) == ("InvalidParameter", 422)
        assert e.message == 'invalid image "acl" (not an array)'
        assert errs(e) == [("acl", "Invalid")]


def test_acl_item_not_uuid(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    e = acl_error(catalog_dc, img["uuid"], [LUKE, "bogus", 3])
    assert (e.code, errs(e)) == ("InvalidParameter", [("acl", "Invalid")])
    assert e.message == 'invalid image "acl" (item 1 is not a UUID): bogus'
    e = acl_error(catalog_dc, img["uuid"], [LUKE.upper()], add=False)
    assert e.message.startswith('invalid image "acl" (item 0 is not a UUID)')


def test_acl_owner_and_visibility(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest(acl=[LUKE]))
    e = acl_error(catalog_dc, img["uuid"], "not json at all!"[0:0], account=LUKE)
    assert (e.code, e.http_status) == ("NotImageOwner", 422)
    e = acl_error(catalog_dc, img["uuid"], [EMPEROR], account=EMPEROR)
    assert (e.code, e.http_status) == ("ResourceNotFound", 404)
    e = catalog_dc.error("AddImageAcl", caller=caller(), uuid=new_uuid(), acl_json="[]")
    assert e.code == "ResourceNotFound"
    e = catalog_dc.error("AddImageAcl", caller=caller(), uuid=img["uuid"], acl_json="[")
    assert (e.code, e.http_status) == ("InvalidContent", 400)


def test_stored_bare_string_acl(catalog_dc: Catalog) -> None:
    u = new_uuid()
    catalog_dc.seed(
        {
            "v": 2,
            "uuid": u,
            "owner": VADER,
            "name": "bare",
            "version": "1",
            "state": "active",
            "activated": True,
            "disabled": False,
            "public": False,
            "published_at": "2013-01-01T00:00:00.000Z",
            "type": "zone-dataset",
            "os": "smartos",
            "files": [{"sha1": "a" * 40, "size": 1, "compression": "none"}],
            "acl": LUKE,
        }
    )
    assert get_view(catalog_dc, u, LUKE)["acl"] == [LUKE]
    assert view_of(acl(catalog_dc, u, [EMPEROR]))["acl"] == [LUKE, EMPEROR]


# --- channels ----------------------------------------------------------------------------------


def test_list_channels(catalog_channels: Catalog, catalog_dc: Catalog) -> None:
    r = catalog_channels.call("ListChannels")
    assert r.enabled
    assert [(c.name, c.description, c.default) for c in r.channels] == [
        ("dev", "development", True),
        ("staging", "staging", False),
        ("release", "release", False),
    ]
    r = catalog_dc.call("ListChannels")
    assert not r.enabled and list(r.channels) == []


def test_server_config(catalog_channels: Catalog, catalog_dc: Catalog) -> None:
    c = catalog_dc.call("GetServerConfig")
    assert (c.mode, c.admin_uuid, list(c.channels)) == ("dc", SDC, [])
    assert "local" in c.storage_names
    c = catalog_channels.call("GetServerConfig")
    assert c.mode == "public" and [ch.name for ch in c.channels] == ["dev", "staging", "release"]


def test_resolve_channel(catalog_channels: Catalog, catalog_dc: Catalog) -> None:
    def resolve(cat: Catalog, name: str, write: bool) -> str:
        return str(cat.call("ResolveChannel", channel=name, write=write).channel)

    assert resolve(catalog_channels, "", False) == "dev"
    assert resolve(catalog_channels, "", True) == "dev"
    assert resolve(catalog_channels, "staging", True) == "staging"
    assert resolve(catalog_channels, "*", False) == ""
    for name, write in (("*", True), ("bogus", False), ("DEV", True)):
        e = catalog_channels.error("ResolveChannel", channel=name, write=write)
        assert (e.code, e.http_status, errs(e)) == ("ValidationFailed", 422, [("channel", "Invalid")])
        assert e.message == f"unknown channel: {name}"
    assert resolve(catalog_dc, "bogus", True) == ""


def channel_add(cat: Catalog, uuid: str, body: Any, channel: str = "", account: str = "") -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return cat.call("ChannelAddImage", caller=caller(account, channel), view=V2, uuid=uuid, body_json=text)


def test_channel_add(catalog_channels: Catalog) -> None:
    img = create_active(catalog_channels, manifest(public=True), channel="staging")
    u = img["uuid"]
    e = catalog_channels.error("ChannelAddImage", caller=caller(), uuid=u, body_json='{"channel": "release"}')
    assert e.code == "ResourceNotFound"  # looked up in the default channel
    out = view_of(channel_add(catalog_channels, u, {"channel": "release"}, channel="staging"))
    assert out["channels"] == ["staging", "release"]
    out = view_of(channel_add(catalog_channels, u, {"channel": "staging"}, channel="release"))
    assert out["channels"] == ["staging", "release"]
    assert get_view(catalog_channels, u, channel="release")["channels"] == ["staging", "release"]
    before = snapshot_channel(catalog_channels, u)
    for body in ({"channel": "bogus"}, {}, {"channel": None}, "", "[]", {"channel": ["dev"]}):
        e = catalog_channels.error(
            "ChannelAddImage",
            caller=caller(channel="staging"),
            uuid=u,
            body_json=body if isinstance(body, str) else json.dumps(body),
        )
        assert (e.code, e.http_status, errs(e)) == ("ValidationFailed", 422, [("channel", "Invalid")])
        assert e.message.startswith("unknown channel: ")
    assert snapshot_channel(catalog_channels, u) == before
    e = catalog_channels.error(
        "ChannelAddImage", caller=caller(LUKE, "staging"), uuid=u, body_json='{"channel": "dev"}'
    )
    assert e.code == "NotImageOwner"


def snapshot_channel(cat: Catalog, uuid: str) -> str:
    return str(cat.call("GetImage", caller=caller(channel="*"), view=V2, uuid=uuid).image.view_json)


def test_delete_from_one_channel(catalog_channels: Catalog) -> None:
    img = catalog_channels.create(manifest(public=True))
    u = img["uuid"]
    channel_add(catalog_channels, u, {"channel": "staging"})
    channel_add(catalog_channels, u, {"channel": "release"})
    r = catalog_channels.call("DeleteImage", caller=caller(channel="staging"), uuid=u)
    assert not r.deleted and list(r.orphaned_blob_ids) == []
    assert get_view(catalog_channels, u)["channels"] == ["dev", "release"]
    e = catalog_channels.error("GetImage", caller=caller(channel="staging"), uuid=u)
    assert e.code == "ResourceNotFound"
    r = catalog_channels.call("DeleteImage", caller=caller(), uuid=u)  # default channel dev
    assert not r.deleted
    assert get_view(catalog_channels, u, channel="release")["channels"] == ["release"]
    # the last channel: the image is deleted
    r = catalog_channels.call("DeleteImage", caller=caller(channel="release"), uuid=u)
    assert r.deleted
    e = catalog_channels.error("GetImage", caller=caller(channel="*"), uuid=u)
    assert e.code == "ResourceNotFound"


def test_delete_force_all_channels(catalog_channels: Catalog) -> None:
    img = catalog_channels.create(manifest(public=True))
    u = img["uuid"]
    channel_add(catalog_channels, u, {"channel": "staging"})
    e = catalog_channels.error("DeleteImage", caller=caller(), uuid=u, force_all_channels="yes")
    assert (e.code, errs(e)) == ("InvalidParameter", [("force_all_channels", "Invalid")])
    r = catalog_channels.call("DeleteImage", caller=caller(), uuid=u, force_all_channels="false")
    assert not r.deleted
    channel_add(catalog_channels, u, {"channel": "dev"}, channel="staging")
    r = catalog_channels.call("DeleteImage", caller=caller(), uuid=u, force_all_channels="true")
    assert r.deleted
    e = catalog_channels.error("DeleteImage", caller=caller(channel="*"), uuid=u)
    assert (e.code, errs(e)) == ("ValidationFailed", [("channel", "Invalid")])


def test_dependents_restricted_to_channel(catalog_channels: Catalog) -> None:
    base = create_active(catalog_channels, manifest(public=True), channel="staging")
    channel_add(catalog_channels, base["uuid"], {"channel": "dev"}, channel="staging")
    child = catalog_channels.create(manifest(public=True, origin=base["uuid"]), channel="staging")
    # in dev there is no dependent: only the dev channel is removed
    r = catalog_channels.call("DeleteImage", caller=caller(channel="dev"), uuid=base["uuid"])
    assert not r.deleted
    e = catalog_channels.error("DeleteImage", caller=caller(channel="staging"), uuid=base["uuid"])
    assert (e.code, e.http_status) == ("ImageHasDependentImages", 422)
    assert child["uuid"] in e.message


def test_channel_server_hides_images_without_channels(catalog_channels: Catalog) -> None:
    img = catalog_channels.create(manifest(public=True))
    u = img["uuid"]
    # the operator removes the channels: the record becomes invalid, hence invisible
    before = snapshot_channel(catalog_channels, u)
    e = catalog_channels.error(
        "UpdateImage", caller=caller(), uuid=u, update_json=json.dumps({"channels": None})
    )
    assert (e.code, errs(e)) == ("ValidationFailed", [("channels", "MissingParameter")])
    assert snapshot_channel(catalog_channels, u) == before
