"""Channels on a public-mode server (dev default, staging, release) with the public test images."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import new_uuid
from tests.gateway.helpers import err

INNO = "c58161c0-2547-11e2-a75e-9fdca1940570"  # no channels: invisible
INDEV = "8ba6d20f-6013-f944-9d69-929ebdef45a2"
INSTAGING = "3e6ebb8c-bb37-9245-ba5d-43d172461be6"
INMULTI = "4e6ebb8c-bb37-9245-ba5d-43d172461be6"


def names(r: httpx.Response) -> set[str]:
    assert r.status_code == 200, r.text
    return {i["uuid"] for i in r.json()}


def test_list_channels(pub: httpx.Client) -> None:
    r = pub.get("/channels")
    assert r.json() == [
        {"name": "dev", "description": "all development builds", "default": True},
        {"name": "staging", "description": "builds for testing in staging in prep for production release"},
        {"name": "release", "description": "release gold bits"},
    ]


def test_channel_visibility(pub: httpx.Client) -> None:
    assert names(pub.get("/images")) >= {INDEV, INMULTI}
    assert not names(pub.get("/images")) & {INNO, INSTAGING}
    assert names(pub.get("/images?channel=staging")) >= {INSTAGING, INMULTI}
    assert names(pub.get("/images?channel=*")) >= {INDEV, INSTAGING, INMULTI}
    assert INNO not in names(pub.get("/images?channel=*"))
    err(pub.get(f"/images/{INSTAGING}"), 404, "ResourceNotFound")
    assert pub.get(f"/images/{INSTAGING}?channel=staging").json()["channels"] == ["staging"]
    assert pub.get(f"/images/{INSTAGING}?channel=*").status_code == 200
    err(pub.get(f"/images/{INNO}?channel=*"), 404, "ResourceNotFound")
    err(pub.get("/images?channel=bogus"), 422, "ValidationFailed", ["channel"])
    err(pub.get(f"/images/{INDEV}?channel=bogus"), 422, "ValidationFailed", ["channel"])


def test_v1_view_has_no_channels(pub: httpx.Client) -> None:
    r = pub.get(f"/images/{INDEV}", headers={"Accept-Version": "~1"})
    assert "channels" not in r.json()
    assert "channels" in pub.get(f"/images/{INDEV}", headers={"Accept-Version": "~2"}).json()


def test_write_channel_errors_precede_json(pub: httpx.Client) -> None:
    bad = {"Content-Type": "application/json"}
    err(pub.post("/images?channel=bogus", content=b"{", headers=bad), 422, "ValidationFailed", ["channel"])
    err(pub.post("/images?channel=*", content=b"{", headers=bad), 422, "ValidationFailed", ["channel"])
    err(
        pub.post(f"/images/{INDEV}?action=update&channel=bogus", content=b"{", headers=bad),
        422,
        "ValidationFailed",
    )
    err(pub.post(f"/images/{INDEV}/acl?channel=bogus", content=b"[", headers=bad), 422, "ValidationFailed")
    err(pub.post("/images?action=create-from-vm&channel=bogus", json={}), 422, "ValidationFailed")
    err(pub.post("/images?action=bogus&channel=bogus", json={}), 422, "ValidationFailed")
    err(pub.post("/images", content=b"{", headers=bad), 400, "InvalidContent")


def test_create_channel_add_delete(pub: httpx.Client) -> None:
    m = {"name": "chan-test", "version": "1.0.0", "type": "zone-dataset", "os": "smartos", "public": True}
    r = pub.post("/images?channel=staging&account=" + new_uuid(), json=m)
    assert r.status_code == 200, r.text
    img = r.json()
    assert img["channels"] == ["staging"]
    u = img["uuid"]
    err(
        pub.post(f"/images/{u}?action=channel-add&channel=staging", json={"channel": "bogus"}),
        422,
        "ValidationFailed",
    )
    r = pub.post(f"/images/{u}?action=channel-add&channel=staging", json={"channel": "release"})
    assert r.status_code == 200 and r.json()["channels"] == ["staging", "release"]
    assert pub.delete(f"/images/{u}?channel=staging").status_code == 204
    assert pub.get(f"/images/{u}?channel=release").json()["channels"] == ["release"]
    err(pub.get(f"/images/{u}?channel=staging"), 404, "ResourceNotFound")
    assert pub.delete(f"/images/{u}?channel=release").status_code == 204
    err(pub.get(f"/images/{u}?channel=*"), 404, "ResourceNotFound")


def test_public_mode_rules(pub: httpx.Client) -> None:
    assert pub.get("/images?state=disabled").json() == []
    assert names(pub.get("/images?state=all")) == names(pub.get("/images"))
    err(pub.get("/images?inclAdminFields=true"), 401, "UnauthorizedError")
    err(pub.get(f"/images/{INDEV}?inclAdminFields=true"), 401, "UnauthorizedError")
    assert "pid" not in pub.get("/ping").json()
    m = {"name": "p", "version": "1", "type": "zone-dataset", "os": "smartos", "public": False}
    err(pub.post("/images?account=" + new_uuid(), json=m), 422, "ValidationFailed", ["public"])
    u = new_uuid()
    r = pub.post(
        f"/images/{u}?action=import", json={**m, "v": 2, "uuid": u, "public": True, "owner": new_uuid()}
    )
    assert r.status_code == 200 and r.json()["owner"] == "00000000-0000-0000-0000-000000000000"
    assert "billing_tags" not in r.json()


def test_private_mode_rules(priv: httpx.Client) -> None:
    assert "pid" not in priv.get("/ping").json()
    assert priv.get("/images?state=unactivated").json() == []
    err(priv.get("/images?inclAdminFields=true"), 401, "UnauthorizedError")
    m = {"name": "p", "version": "1", "type": "zone-dataset", "os": "smartos", "public": True}
    err(priv.post("/images?account=" + new_uuid(), json=m), 422, "ValidationFailed", ["public"])
    err(priv.post(f"/images/{new_uuid()}/clone?account={new_uuid()}", json={}), 404, "ResourceNotFound")
