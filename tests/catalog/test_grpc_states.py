"""The state machine through gRPC (activate, disable, enable) and the change feed."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime

import pytest
from imgapi.v1 import catalog_pb2, common_pb2

from tests.catalog.conftest import EMPEROR, LUKE, SDC, V2, VADER, Catalog, caller, catalog_dc, manifest
from tests.catalog.grpc_support import (
    attach_file,
    changes,
    create_active,
    etags,
    get,
    get_view,
    icon_msg,
    import_image,
    new_uuid,
    snapshot,
    update,
    view_of,
)

__all__ = ["catalog_dc"]

PUBLISHED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def action(cat: Catalog, name: str, uuid: str, account: str = "", **kw: object) -> dict[str, object]:
    return view_of(cat.call(name, caller=caller(account), view=V2, uuid=uuid, **kw))


def test_activate_lifecycle(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    uuid = img["uuid"]
    e = catalog_dc.error("ActivateImage", caller=caller(), view=V2, uuid=uuid)
    assert (e.code, e.http_status) == ("NoActivationNoFile", 422)
    assert e.message == f'image "{uuid}" cannot be activated: it has no file'
    attach_file(catalog_dc, uuid)
    before = time.time()
    r = catalog_dc.call("ActivateImage", caller=caller(), view=V2, uuid=uuid)
    after = time.time()
    out = view_of(r)
    assert out["state"] == "active" and out["disabled"] is False and r.image.activated
    assert isinstance(out["published_at"], str) and PUBLISHED.match(out["published_at"])
    assert list(out).index("published_at") == list(out).index("public") + 1
    published = datetime.fromisoformat(out["published_at"].replace("Z", "+00:00")).timestamp()
    # millisecond precision: the stamp lies within the call, give or take the truncated millisecond
    assert before - 0.001 <= published <= after, (before, out["published_at"], after)
    e = catalog_dc.error("ActivateImage", caller=caller(), view=V2, uuid=uuid)
    assert (e.code, e.http_status) == ("ImageAlreadyActivated", 422)
    assert e.message == f'image "{uuid}" is already activated'
    assert get_view(catalog_dc, uuid) == out


def test_activate_disabled_image(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest(disabled=True))
    assert img["state"] == "unactivated" and img["disabled"] is True
    attach_file(catalog_dc, img["uuid"])
    out = action(catalog_dc, "ActivateImage", img["uuid"])
    assert out["state"] == "disabled" and out["disabled"] is True


def test_activate_keeps_imported_published_at(catalog_dc: Catalog) -> None:
    uuid = new_uuid()
    import_image(catalog_dc, uuid, manifest(v=2, uuid=uuid, published_at="2012-10-11T14:40:57Z"))
    attach_file(catalog_dc, uuid)
    out = action(catalog_dc, "ActivateImage", uuid)
    assert out["published_at"] == "2012-10-11T14:40:57Z"


def test_disable_enable(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    uuid = img["uuid"]
    # before activation: disabled flag toggles, state stays unactivated (idempotent)
    for _ in range(2):
        out = action(catalog_dc, "DisableImage", uuid)
        assert (out["state"], out["disabled"]) == ("unactivated", True)
    for _ in range(2):
        out = action(catalog_dc, "EnableImage", uuid)
        assert (out["state"], out["disabled"]) == ("unactivated", False)
    attach_file(catalog_dc, uuid)
    action(catalog_dc, "ActivateImage", uuid)
    for _ in range(2):
        out = action(catalog_dc, "DisableImage", uuid)
        assert (out["state"], out["disabled"]) == ("disabled", True)
    e = catalog_dc.error("ActivateImage", caller=caller(), view=V2, uuid=uuid)
    assert e.code == "ImageAlreadyActivated"  # activated is never cleared
    for _ in range(2):
        out = action(catalog_dc, "EnableImage", uuid)
        assert (out["state"], out["disabled"]) == ("active", False)


def test_disable_turns_placeholder_into_unactivated(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    assert view_of(update(catalog_dc, img["uuid"], {"state": "creating"}))["state"] == "creating"
    out = action(catalog_dc, "DisableImage", img["uuid"])
    assert out["state"] == "unactivated"
    update(catalog_dc, img["uuid"], {"state": "failed", "error": {"message": "x"}})
    out = action(catalog_dc, "EnableImage", img["uuid"])
    assert out["state"] == "unactivated" and "error" not in out


def test_operator_state_may_contradict_flags(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest())
    out = view_of(update(catalog_dc, img["uuid"], {"state": "unactivated"}))
    assert out["state"] == "unactivated"
    # list filters keep using activated/disabled
    from tests.catalog.grpc_support import list_uuids

    assert list_uuids(catalog_dc, name=img["name"]) == [img["uuid"]]
    assert list_uuids(catalog_dc, name=img["name"], state="unactivated") == []


def test_placeholder_activation_clears_expires_at(catalog_dc: Catalog) -> None:
    uuid = new_uuid()
    catalog_dc.seed(
        {
            "v": 2,
            "uuid": uuid,
            "owner": VADER,
            "name": "placeholder",
            "version": "1",
            "state": "creating",
            "activated": False,
            "disabled": False,
            "public": False,
            "type": "zone-dataset",
            "os": "smartos",
            "files": [],
            "acl": [],
            "expires_at": "2099-01-01T00:00:00.000Z",
        }
    )
    assert get_view(catalog_dc, uuid)["state"] == "creating"
    attach_file(catalog_dc, uuid)
    assert get_view(catalog_dc, uuid)["state"] == "creating"  # file upload keeps the state
    r = catalog_dc.call("ActivateImage", caller=caller(), view=V2, uuid=uuid)
    assert r.image.state == "active" and not r.image.HasField("expires_at")


def test_transitions_owner_and_visibility(catalog_dc: Catalog) -> None:
    img = create_active(catalog_dc, manifest(acl=[LUKE]))
    for name in ("ActivateImage", "DisableImage", "EnableImage"):
        before = snapshot(catalog_dc, img["uuid"])
        e = catalog_dc.error(name, caller=caller(LUKE), view=V2, uuid=img["uuid"])
        assert (e.code, e.http_status) == ("NotImageOwner", 422)
        e = catalog_dc.error(name, caller=caller(EMPEROR), view=V2, uuid=img["uuid"])
        assert (e.code, e.http_status) == ("ResourceNotFound", 404)
        e = catalog_dc.error(name, caller=caller("x"), view=V2, uuid=img["uuid"])
        assert e.code == "InvalidParameter"
        e = catalog_dc.error(name, caller=caller(), view=V2, uuid=new_uuid())
        assert e.code == "ResourceNotFound"
        assert snapshot(catalog_dc, img["uuid"]) == before
    assert action(catalog_dc, "DisableImage", img["uuid"], account=VADER)["state"] == "disabled"


def test_actions_honour_preconditions(catalog_dc: Catalog) -> None:
    img = catalog_dc.create(manifest())
    attach_file(catalog_dc, img["uuid"])
    before = snapshot(catalog_dc, img["uuid"])
    for name in ("ActivateImage", "DisableImage", "EnableImage"):
        e = catalog_dc.error(
            name,
            caller=caller(),
            view=V2,
            uuid=img["uuid"],
            preconditions=common_pb2.Preconditions(if_match=etags("stale")),
        )
        assert (e.code, e.http_status) == ("PreconditionFailed", 412)
    assert snapshot(catalog_dc, img["uuid"]) == before
    etag = get(catalog_dc, img["uuid"]).image.etag
    out = action(
        catalog_dc, "ActivateImage", img["uuid"], preconditions=common_pb2.Preconditions(if_match=etags(etag))
    )
    assert out["state"] == "active"


# --- the change feed --------------------------------------------------------------------------


def test_change_feed_records_every_kind(catalog_dc: Catalog) -> None:
    start = max((c.cursor for c in changes(catalog_dc)), default=0)
    channel_free = catalog_dc.create(manifest())
    uuid = channel_free["uuid"]
    update(catalog_dc, uuid, {"description": "x"})
    attach_file(catalog_dc, uuid)
    catalog_dc.call("AttachImageIcon", caller=caller(), view=V2, uuid=uuid, icon=icon_msg())
    catalog_dc.call("AddImageAcl", caller=caller(), view=V2, uuid=uuid, acl_json=json.dumps([LUKE]))
    catalog_dc.call("ActivateImage", caller=caller(), view=V2, uuid=uuid)
    catalog_dc.call("DisableImage", caller=caller(), view=V2, uuid=uuid)
    catalog_dc.call("EnableImage", caller=caller(), view=V2, uuid=uuid)
    catalog_dc.call("DetachImageIcon", caller=caller(), view=V2, uuid=uuid)
    catalog_dc.call("DeleteImage", caller=caller(), uuid=uuid)
    evs = [c for c in changes(catalog_dc, start) if c.image_uuid == uuid]
    assert [c.kind for c in evs] == [
        "create",
        "update",
        "file",
        "icon",
        "acl",
        "activate",
        "disable",
        "enable",
        "icon",
        "delete",
    ]
    cursors = [c.cursor for c in evs]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors) and cursors[0] > start
    for ev in evs[:-1]:
        assert ev.HasField("image") and ev.image.uuid == uuid
        assert re.match(r"^\d{4}-\d{2}-\d{2}T", ev.changed_at)
        # the full v2 admin view
        view = json.loads(ev.image.view_json)
        assert view["uuid"] == uuid
    assert not evs[-1].HasField("image")
    assert json.loads(evs[5].image.view_json)["state"] == "active"
    assert json.loads(evs[2].image.view_json)["files"][0]["stor"] == "local"
    # after_cursor skips what was already processed
    later = changes(catalog_dc, cursors[4])
    assert [c.cursor for c in later if c.image_uuid == uuid] == cursors[5:]


def test_change_feed_all_cursors_increasing(catalog_dc: Catalog) -> None:
    evs = changes(catalog_dc)
    cursors = [c.cursor for c in evs]
    assert cursors == sorted(set(cursors)) and cursors


def test_change_feed_channel_and_import_kinds(catalog_dc: Catalog) -> None:
    start = max((c.cursor for c in changes(catalog_dc)), default=0)
    uuid = new_uuid()
    import_image(catalog_dc, uuid, manifest(v=2, uuid=uuid))
    update(catalog_dc, uuid, {"owner": SDC})
    kinds = [c.kind for c in changes(catalog_dc, start) if c.image_uuid == uuid]
    assert kinds == ["create", "update"]


def test_change_feed_follows_live(catalog_dc: Catalog) -> None:
    start = max((c.cursor for c in changes(catalog_dc)), default=0)
    received: list[catalog_pb2.ChangeEvent] = []
    stream = catalog_dc.stub.WatchChanges(catalog_pb2.WatchChangesRequest(after_cursor=start), timeout=30)
    done = threading.Event()

    def consume() -> None:
        for ev in stream:
            received.append(ev)
            if len(received) >= 2:
                done.set()
                return

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    time.sleep(0.3)
    img = catalog_dc.create(manifest())
    update(catalog_dc, img["uuid"], {"description": "live"})
    assert done.wait(10), "live changes were not streamed"
    stream.cancel()  # type: ignore[no-untyped-call]
    t.join(5)
    assert [(e.image_uuid, e.kind) for e in received[:2]] == [
        (img["uuid"], "create"),
        (img["uuid"], "update"),
    ]


@pytest.mark.parametrize("after", [0, 10**12])
def test_change_feed_replay_only_terminates(catalog_dc: Catalog, after: int) -> None:
    evs = changes(catalog_dc, after)
    if after:
        assert evs == []
