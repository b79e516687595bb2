"""ListImages, GetImage, CreateImage, DeleteImage, CloneImage through the gateway (dc mode)."""

from __future__ import annotations

import hashlib
import json

import httpx

from tests.gateway.conftest import Stack, new_uuid
from tests.gateway.helpers import (
    BASE_181,
    BASE_200,
    DARK_SIDE,
    EMPEROR,
    FATHER,
    JOIN_US,
    LUKE,
    NODEJS,
    VADER,
    create,
    err,
    manifest,
)


def uuids(r: httpx.Response) -> set[str]:
    assert r.status_code == 200, r.text
    return {i["uuid"] for i in r.json()}


def test_list_default_state_active(dc: httpx.Client) -> None:
    got = uuids(dc.get("/images"))
    assert {BASE_181, FATHER} <= got and not got & {NODEJS, BASE_200, DARK_SIDE, JOIN_US}
    assert dc.get("/images").text.startswith('[\n  {\n    "v": 2')


def test_list_states(dc: httpx.Client) -> None:
    assert {NODEJS, DARK_SIDE} <= uuids(dc.get("/images?state=disabled"))
    assert {BASE_200, JOIN_US} <= uuids(dc.get("/images?state=unactivated"))
    assert {BASE_181, NODEJS, BASE_200, FATHER, DARK_SIDE, JOIN_US} <= uuids(dc.get("/images?state=all"))
    # an empty state is the default; an empty account is a user request that owns nothing
    assert uuids(dc.get("/images?state=")) == uuids(dc.get("/images"))
    assert FATHER in uuids(dc.get("/images")) and FATHER not in uuids(dc.get("/images?account="))


def test_list_account_scoping(dc: httpx.Client) -> None:
    # luke sees public active images and vader's image he is on the ACL of.
    got = uuids(dc.get(f"/images?account={LUKE}&state=all"))
    assert {BASE_181, NODEJS, FATHER, DARK_SIDE} <= got and not got & {BASE_200, JOIN_US}
    # emperor is on the ACL of an unactivated image only: not visible.
    assert JOIN_US not in uuids(dc.get(f"/images?account={EMPEROR}&state=all"))
    # state=unactivated with account: own images only.
    assert uuids(dc.get(f"/images?account={VADER}&state=unactivated")) >= {JOIN_US}
    assert JOIN_US not in uuids(dc.get(f"/images?account={LUKE}&state=unactivated"))
    got = uuids(dc.get(f"/images?account={LUKE}&owner={VADER}"))
    assert FATHER in got and not got & {DARK_SIDE, JOIN_US}


def test_list_filters(dc: httpx.Client) -> None:
    assert uuids(dc.get("/images?name=base&state=all")) >= {BASE_181, BASE_200}
    assert FATHER in uuids(dc.get("/images?name=~father"))
    assert FATHER not in uuids(dc.get("/images?name=~Father"))
    assert BASE_181 not in uuids(dc.get("/images?type=!zone-dataset"))
    assert uuids(dc.get("/images?public=false")) >= {FATHER}
    assert BASE_181 not in uuids(dc.get("/images?public=false"))
    got = uuids(dc.get(f"/images?owner={VADER}&state=all"))
    assert got >= {FATHER, DARK_SIDE, JOIN_US} and not got & {BASE_181, NODEJS}


def test_list_tags_and_billing_tags(dc: httpx.Client) -> None:
    tag = new_uuid()[:8]
    a = create(dc, name=f"tagged-{tag}", tags={"role": tag, "num": 42, "flag": True}, billing_tags=["x", tag])
    q = "&state=all"
    assert uuids(dc.get(f"/images?tag.role={tag}{q}")) == {a["uuid"]}
    assert a["uuid"] in uuids(dc.get(f"/images?tag.num=42&tag.role={tag}{q}"))
    assert a["uuid"] in uuids(dc.get(f"/images?tag.flag=true&tag.role={tag}{q}"))
    assert uuids(dc.get(f"/images?tag.role={tag}&tag.num=43{q}")) == set()
    assert uuids(dc.get(f"/images?billing_tag=x&billing_tag={tag}{q}")) == {a["uuid"]}
    assert uuids(dc.get(f"/images?billing_tag=y&billing_tag={tag}{q}")) == set()


def test_list_empty_tag_value_matches_only_the_empty_string(dc: httpx.Client) -> None:
    """``tag.KEY=`` matches ``KEY: ""`` only; an image with ``KEY: "db"`` is not returned."""
    key = f"role{new_uuid()[:8]}"
    empty = create(dc, name=f"empty-{key}", tags={key: ""})
    db = create(dc, name=f"db-{key}", tags={key: "db"})
    assert uuids(dc.get(f"/images?tag.{key}=&state=all")) == {empty["uuid"]}
    assert uuids(dc.get(f"/images?tag.{key}=db&state=all")) == {db["uuid"]}


def test_list_param_errors_in_order(dc: httpx.Client) -> None:
    err(dc.get("/images?limit=abc"), 422, "InvalidParameter", ["state"])
    err(dc.get("/images?limit=-1"), 422, "InvalidParameter", ["state"])
    err(dc.get("/images?state=bogus"), 422, "InvalidParameter", ["state"])
    err(dc.get("/images?public=yes"), 422, "InvalidParameter", ["public"])
    err(dc.get("/images?sort=name"), 422, "InvalidParameter", ["sort"])
    err(dc.get("/images?marker=notadate"), 422, "InvalidParameter", ["marker"])
    err(dc.get(f"/images?marker={new_uuid()}"), 404, "ResourceNotFound")
    err(dc.get("/images?inclAdminFields=yes"), 422, "InvalidParameter", ["inclAdminFields"])
    # precedence: inclAdminFields before limit before state
    err(dc.get("/images?inclAdminFields=yes&limit=abc"), 422, "InvalidParameter", ["inclAdminFields"])
    err(dc.get("/images?limit=abc&state=bogus&public=x"), 422, "InvalidParameter", ["state"])
    body = err(dc.get("/images?state=bogus&public=x"), 422, "InvalidParameter", ["state"])
    assert body["message"] == 'invalid state: "bogus"'


def test_list_pagination_marker_inclusive(dc: httpx.Client) -> None:
    page = dc.get("/images?state=all&limit=2").json()
    assert len(page) == 2
    nxt = dc.get(f"/images?state=all&limit=2&marker={page[1]['uuid']}").json()
    assert nxt[0]["uuid"] == page[1]["uuid"]
    desc = dc.get("/images?state=all&sort=published_at.desc&limit=1000").json()
    asc = dc.get("/images?state=all&sort=published_at&limit=1000").json()
    assert [i["uuid"] for i in desc] == [i["uuid"] for i in reversed(asc)]


def test_list_admin_fields(dc: httpx.Client) -> None:
    imgs = dc.get("/images?inclAdminFields=true&name=base").json()
    assert imgs and all(f.get("stor") == "local" for i in imgs for f in i["files"])
    imgs = dc.get("/images?name=base").json()
    assert all("stor" not in f for i in imgs for f in i["files"])


def test_get_image_and_etag(dc: httpx.Client) -> None:
    r = dc.get(f"/images/{BASE_181}")
    assert r.status_code == 200
    compact = json.dumps(r.json(), separators=(",", ":"), ensure_ascii=False).encode()
    assert r.headers["etag"] == hashlib.sha1(compact).hexdigest()
    assert dc.get(f"/images/{BASE_181}", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert dc.get(f"/images/{BASE_181}", headers={"If-None-Match": "nope"}).status_code == 200
    err(dc.get(f"/images/{BASE_181}", headers={"If-Match": "nope"}), 412, "PreconditionFailed")
    assert dc.get(f"/images/{BASE_181}", headers={"If-Match": f'"{r.headers["etag"]}"'}).status_code == 200


def test_get_image_errors(dc: httpx.Client) -> None:
    missing = new_uuid()
    assert (
        err(dc.get(f"/images/{missing}"), 404, "ResourceNotFound")["message"] == f"image {missing} not found"
    )
    err(dc.get(f"/images/{BASE_181}?account=nope"), 422, "InvalidParameter", ["account"])
    assert (
        err(dc.get(f"/images/{JOIN_US}?account={LUKE}"), 404, "ResourceNotFound")["message"]
        == "image not found"
    )
    assert dc.get(f"/images/{JOIN_US}?account={VADER}").status_code == 200
    assert dc.get(f"/images/{FATHER}?account={LUKE}").status_code == 200
    err(dc.get(f"/images/{BASE_181}?inclAdminFields=1"), 422, "InvalidParameter", ["inclAdminFields"])
    assert "stor" in dc.get(f"/images/{BASE_181}?inclAdminFields=true").json()["files"][0]


def test_get_image_versions(dc_stack: Stack) -> None:
    with dc_stack.client() as c:  # no Accept-Version: v1 view
        assert c.get(f"/images/{BASE_181}").status_code == 200
        assert c.get(f"/images/{BASE_181}", headers={"Accept-Version": "~1"}).status_code == 200


def test_create_image(dc: httpx.Client) -> None:
    r = dc.post(f"/images?account={LUKE}", json=manifest())
    assert r.status_code == 200
    img = r.json()
    assert img["owner"] == LUKE and img["state"] == "unactivated" and img["files"] == []
    assert r.headers["etag"]


def test_create_image_errors(dc: httpx.Client) -> None:
    err(
        dc.post("/images", json=manifest(uuid=new_uuid(), colour="red")),
        422,
        "InvalidParameter",
        ["uuid", "colour"],
    )
    err(dc.post("/images", json=manifest(owner=LUKE, os="beos")), 422, "ValidationFailed", ["os"])
    err(dc.post(f"/images?account={LUKE}", json=manifest(state="active")), 422, "ValidationFailed", ["state"])
    err(dc.post(f"/images?account={LUKE}", json=manifest(owner=VADER)), 422, "InvalidParameter", ["owner"])
    err(dc.post("/images?account=bogus", json=manifest()), 422, "InvalidParameter", ["account"])
    err(dc.post(f"/images?account={LUKE}", json=manifest(origin=new_uuid())), 422, "OriginDoesNotExist")
    # body: absent / not JSON content type -> missing body
    err(dc.post("/images"), 422, "ValidationFailed", ["body"])
    err(
        dc.post("/images", content=b'{"a":1}', headers={"Content-Type": "text/plain"}),
        422,
        "ValidationFailed",
        ["body"],
    )
    # bad JSON / bad digest
    body = err(
        dc.post("/images", content=b"{nope", headers={"Content-Type": "application/json"}),
        400,
        "InvalidContent",
    )
    assert body["message"].startswith("Invalid JSON: ")
    err(
        dc.post(
            "/images", content=b"{}", headers={"Content-Type": "application/json", "Content-MD5": "AAAA"}
        ),
        400,
        "BadDigest",
    )
    # JSON content type with parameters is JSON
    r = dc.post(
        f"/images?account={LUKE}",
        content=json.dumps(manifest()).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200


def test_create_image_actions(dc: httpx.Client) -> None:
    body = err(dc.post("/images?action=create-from-vm&vm_uuid=x", json={}), 501, "NotAvailable")
    assert body["message"] == "custom image creation is not currently available"
    err(dc.post(f"/images?action=import-docker-image&account={LUKE}", json={}), 403, "OperatorOnly")
    # With a replication service, the import streams; a loopback registry is refused by the
    # outbound guard (the default allow-list admits public addresses only), whatever the network.
    r = dc.post("/images?action=import-docker-image&repo=127.0.0.1:9/busybox&tag=latest", json={})
    assert r.status_code == 200, r.text
    last = json.loads(r.text.strip().splitlines()[-1])
    assert last["error"]["code"] == "RemoteSourceError", last
    assert "IMGAPI_REPLICATION_DOCKER_REGISTRY_ALLOWLIST" in last["error"]["message"]
    err(dc.post(f"/images?action=import-lxd-image&account={LUKE}", json={}), 403, "OperatorOnly")
    err(dc.post("/images?action=import-lxd-image&alias=images:alpine/3.19", json={}), 501, "NotAvailable")
    body = err(dc.post("/images?action=bogus", json={}), 422, "InvalidParameter", ["action"])
    assert body["message"] == '"bogus" is not a valid action'
    # JSON errors come before the action
    err(
        dc.post("/images?action=bogus", content=b"{", headers={"Content-Type": "application/json"}),
        400,
        "InvalidContent",
    )


def test_delete_image(dc: httpx.Client) -> None:
    img = create(dc)
    err(dc.delete(f"/images/{img['uuid']}?account={VADER}"), 404, "ResourceNotFound")
    err(dc.delete(f"/images/{img['uuid']}?force_all_channels=yes"), 422, "InvalidParameter")
    r = dc.delete(f"/images/{img['uuid']}?account={LUKE}")
    assert r.status_code == 204 and r.content == b""
    err(dc.delete(f"/images/{img['uuid']}"), 404, "ResourceNotFound")


def test_delete_image_with_dependents(dc: httpx.Client) -> None:
    base = create(dc)
    create(dc, origin=base["uuid"])
    err(dc.delete(f"/images/{base['uuid']}"), 422, "ImageHasDependentImages")


def test_clone_image_errors(dc: httpx.Client) -> None:
    err(dc.post(f"/images/{FATHER}/clone", json={}), 422, "InvalidParameter", ["account"])
    err(dc.post(f"/images/{FATHER}/clone?account=nope", json={}), 422, "InvalidParameter", ["account"])
    err(dc.post(f"/images/{JOIN_US}/clone?account={EMPEROR}", json={}), 404, "ResourceNotFound")
    err(dc.post(f"/images/{JOIN_US}/clone?account={VADER}", json={}), 422, "ValidationFailed", ["active"])
    err(dc.post(f"/images/{BASE_181}/clone?account={LUKE}", json={}), 422, "ImageNotShared")


def test_clone_image(dc: httpx.Client) -> None:
    r = dc.post(f"/images/{FATHER}/clone?account={LUKE}", json={})
    assert r.status_code == 200, r.text
    clone = r.json()
    assert clone["owner"] == LUKE and clone["uuid"] != FATHER and clone["state"] == "active"
    assert "acl" not in clone


def test_list_image_jobs(dc: httpx.Client) -> None:
    assert dc.get(f"/images/{BASE_181}/jobs").status_code == 200
    err(dc.get(f"/images/{new_uuid()}/jobs"), 404, "ResourceNotFound")
    err(dc.get("/images/nope/jobs"), 404, "ResourceNotFound")


def test_push_docker_image(dc: httpx.Client) -> None:
    err(dc.post(f"/images/{BASE_181}/push", json={}), 422, "ValidationFailed", ["type"])
    err(dc.post(f"/images/{FATHER}/push?account={LUKE}", json={}), 422, "NotImageOwner")
    err(dc.post(f"/images/{new_uuid()}/push", json={}), 404, "ResourceNotFound")
