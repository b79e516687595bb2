"""POST /images/:uuid?action=... (the dispatcher's order of checks) and the ACL routes."""

from __future__ import annotations

import json

import httpx

from tests.gateway.conftest import new_uuid
from tests.gateway.helpers import BASE_181, BASE_200, FATHER, LUKE, SDC, VADER, create, err, manifest


def act(c: httpx.Client, uuid: str, query: str, body: object = None, **headers: str) -> httpx.Response:
    return c.post(f"/images/{uuid}?{query}", json={} if body is None else body, headers=headers)


def test_dispatcher_order_unknown_action(dc: httpx.Client) -> None:
    # unknown action on a missing image: 404 (load first)
    err(act(dc, new_uuid(), "action=bogus"), 404, "ResourceNotFound")
    # visible but not owned: NotImageOwner before the action check
    err(act(dc, BASE_181, f"action=bogus&account={LUKE}"), 422, "NotImageOwner")
    # If-Match before the action check
    err(act(dc, BASE_181, "action=bogus", **{"If-Match": "nope"}), 412, "PreconditionFailed")
    body = err(act(dc, BASE_181, "action=bogus"), 422, "InvalidParameter", ["action"])
    assert body["errors"] == [{"field": "action", "code": "Invalid"}]
    body = err(act(dc, BASE_181, ""), 422, "InvalidParameter", ["action"])
    assert body == {
        "code": "InvalidParameter",
        "message": 'no image "action" was specified',
        "errors": [{"field": "action", "code": "MissingParameter"}],
    }
    # channel-add without channels is an invalid action
    err(act(dc, BASE_181, "action=channel-add", {"channel": "dev"}), 422, "InvalidParameter", ["action"])
    # JSON errors before everything else (but after the uuid shape)
    bad = {"Content-Type": "application/json"}
    err(dc.post(f"/images/{new_uuid()}?action=bogus", content=b"{", headers=bad), 400, "InvalidContent")
    err(dc.post("/images/nope?action=bogus", content=b"{", headers=bad), 404, "ResourceNotFound")
    err(act(dc, BASE_181, "action=bogus&account=nope"), 422, "InvalidParameter", ["account"])


def test_lifecycle_actions(dc: httpx.Client) -> None:
    img = create(dc)
    u = img["uuid"]
    err(act(dc, u, f"action=activate&account={LUKE}"), 422, "NoActivationNoFile")
    err(act(dc, u, f"action=activate&account={VADER}"), 404, "ResourceNotFound")
    r = act(dc, u, f"action=update&account={LUKE}", {"description": "new"})
    assert r.status_code == 200 and r.json()["description"] == "new"
    etag = r.headers["etag"]
    err(act(dc, u, "action=update", {"description": "x"}, **{"If-Match": "stale"}), 412, "PreconditionFailed")
    r = act(dc, u, "action=update", {"description": "y"}, **{"If-Match": etag})
    assert r.status_code == 200
    err(act(dc, u, "action=update", {}), 422, "ValidationFailed")
    err(act(dc, u, "action=update", {"type": "zvol"}), 422, "ValidationFailed", ["type"])
    r = act(dc, u, "action=disable")
    assert r.status_code == 200 and r.json()["disabled"] is True
    r = act(dc, u, "action=enable")
    assert r.status_code == 200 and r.json()["disabled"] is False
    err(act(dc, BASE_181, "action=activate"), 422, "ImageAlreadyActivated")
    err(act(dc, BASE_200, "action=activate"), 422, "NoActivationNoFile")


def test_admin_import(dc: httpx.Client) -> None:
    u = new_uuid()
    m = manifest(v=2, uuid=u, owner=LUKE, published_at="2024-01-01T00:00:00.000Z")
    err(act(dc, u, f"action=import&account={LUKE}", m), 403, "OperatorOnly")
    err(act(dc, new_uuid(), "action=import", m), 422, "InvalidParameter", ["uuid"])
    err(act(dc, u, "action=import&skip_owner_check=yes", m), 422, "InvalidParameter")
    r = act(dc, u, "action=import", m)
    assert r.status_code == 200, r.text
    assert r.json()["published_at"] == "2024-01-01T00:00:00.000Z" and r.json()["state"] == "unactivated"
    err(act(dc, u, "action=import", m), 409, "ImageUuidAlreadyExists")
    # owner 000... becomes the admin uuid in dc mode
    z = new_uuid()
    r = act(dc, z, "action=import", manifest(v=2, uuid=z, owner="00000000-0000-0000-0000-000000000000"))
    assert r.json()["owner"] == SDC
    err(dc.post(f"/images/{new_uuid()}?action=import"), 422, "InvalidParameter", ["uuid"])


def test_change_stor(dc: httpx.Client) -> None:
    err(act(dc, new_uuid(), "action=change-stor&stor=local"), 404, "ResourceNotFound")
    err(act(dc, BASE_181, f"action=change-stor&stor=local&account={LUKE}"), 403, "OperatorOnly")
    err(act(dc, BASE_181, "action=change-stor"), 422, "ValidationFailed", ["stor"])
    err(act(dc, BASE_181, "action=change-stor&stor=floppy"), 422, "ValidationFailed", ["stor"])
    r = act(dc, BASE_181, "action=change-stor&stor=local")
    assert r.status_code == 200 and r.json()["files"][0]["stor"] == "local"


def test_export(dc: httpx.Client) -> None:
    err(act(dc, FATHER, f"action=export&account={LUKE}"), 422, "NotImageOwner")
    err(act(dc, BASE_181, "action=export"), 422, "ValidationFailed", ["manta_path"])
    err(act(dc, BASE_181, "action=export&manta_path=//stor/x"), 422, "InvalidParameter", ["manta_path"])
    err(act(dc, BASE_181, "action=export&manta_path=/luke/stor/x"), 503, "StorageUnsupported")


def test_acl(dc: httpx.Client) -> None:
    u = create(dc, account=LUKE)["uuid"]
    r = dc.post(f"/images/{u}/acl?account={LUKE}", json=[VADER])
    assert r.status_code == 200 and r.json()["acl"] == [VADER]
    r = dc.post(f"/images/{u}/acl?action=add", json=[VADER, SDC])
    assert r.json()["acl"] == [VADER, SDC]
    r = dc.post(f"/images/{u}/acl?action=remove", json=[VADER, SDC])
    assert "acl" not in r.json() and r.headers["etag"]
    err(dc.post(f"/images/{u}/acl?action=bogus", json=[VADER]), 422, "InvalidParameter", ["action"])
    err(dc.post(f"/images/{u}/acl", json={"a": 1}), 422, "InvalidParameter", ["acl"])
    err(dc.post(f"/images/{u}/acl", json=["nope"]), 422, "InvalidParameter", ["acl"])
    err(dc.post(f"/images/{u}/acl"), 422, "InvalidParameter", ["acl"])
    # order: JSON -> 404 -> owner -> action -> body
    bad = {"Content-Type": "application/json"}
    err(dc.post(f"/images/{new_uuid()}/acl", content=b"[", headers=bad), 400, "InvalidContent")
    err(dc.post(f"/images/{new_uuid()}/acl?action=bogus", json=[]), 404, "ResourceNotFound")
    err(dc.post(f"/images/{FATHER}/acl?action=bogus&account={LUKE}", json=[]), 422, "NotImageOwner")
    err(dc.post(f"/images/{FATHER}/acl?account={LUKE}", json="x"), 422, "NotImageOwner")


def test_bad_digest_and_md5_ok(dc: httpx.Client) -> None:
    import base64
    import hashlib

    body = json.dumps({"description": "md5"}).encode()
    u = create(dc)["uuid"]
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    h = {"Content-Type": "application/json", "Content-MD5": good}
    assert dc.post(f"/images/{u}?action=update", content=body, headers=h).status_code == 200
    h["Content-MD5"] = "mZFLkyvTelC5g8XnyQrpOw=="
    b = err(dc.post(f"/images/{u}?action=update", content=body, headers=h), 400, "BadDigest")
    assert b["message"] == f"Content-MD5 'mZFLkyvTelC5g8XnyQrpOw==' didn't match '{good}'"


def test_admin_import_skip_owner_check_values(dc: httpx.Client) -> None:
    """Only ``true``/``false`` are booleans; the empty value reads as absent."""
    cases = {
        "skip_owner_check=TRUE": "TRUE",
        "skip_owner_check=1": "1",
        "skip_owner_check=true&skip_owner_check=true": "true,true",
        "skip_owner_check[b]=c": "[object Object]",
    }
    for query, text in cases.items():
        u = new_uuid()
        m = manifest(v=2, uuid=u, owner=LUKE)
        body = err(act(dc, u, f"action=import&{query}", m), 422, "InvalidParameter", ["skip_owner_check"])
        assert body == {
            "code": "InvalidParameter",
            "message": f'invalid value for "skip_owner_check" param: "{text}" is not a boolean',
            "errors": [{"field": "skip_owner_check", "code": "Invalid"}],
        }
    for ok in ("", "true", "false"):
        u = new_uuid()
        r = act(dc, u, f"action=import&skip_owner_check={ok}", manifest(v=2, uuid=u, owner=LUKE))
        assert r.status_code == 200 and r.json()["uuid"] == u, (ok, r.text)


def test_admin_import_skip_owner_check_order(dc: httpx.Client, pub: httpx.Client) -> None:
    """channel -> operator -> body uuid -> skip_owner_check -> the image's existence."""
    bad = "skip_owner_check=yes"
    u = new_uuid()
    m = manifest(v=2, uuid=u, owner=LUKE)
    err(act(pub, u, f"action=import&channel=nope&{bad}", m), 422, "ValidationFailed", ["channel"])
    err(act(dc, u, f"action=import&account={LUKE}&{bad}", m), 403, "OperatorOnly")
    err(act(dc, u, f"action=import&account=&{bad}", m), 403, "OperatorOnly")
    # a malformed account is no InvalidParameter here (why the edge leaves accounts to the catalog)
    err(act(dc, u, f"action=import&account=nope&{bad}", m), 403, "OperatorOnly")
    err(pub.get(f"/images/{u}?account=nope&channel=bogus"), 422, "ValidationFailed", ["channel"])
    err(act(dc, new_uuid(), f"action=import&{bad}", m), 422, "InvalidParameter", ["uuid"])
    body = err(act(dc, u, f"action=import&{bad}", {"uuid": 12345678901234567890}), 422, "InvalidParameter")
    assert body["message"] == f'URL UUID, "{u}" and body UUID, "12345678901234567000" do not match'

    existing = manifest(v=2, uuid=BASE_181, owner=LUKE)
    err(act(dc, BASE_181, f"action=import&{bad}", existing), 422, "InvalidParameter", ["skip_owner_check"])
    err(act(pub, u, f"action=import&channel=staging&{bad}", m), 422, "InvalidParameter", ["skip_owner_check"])
    # the checks that come before leave nothing behind
    assert dc.get(f"/images/{u}").status_code == 404
