"""AdminPushDockerImage (``POST /images/:uuid/push``) through REST: an imported image pushed back to
a registry (R0 without auth, RT with token auth), and the request checks."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.docker.conftest import Registry0
from tests.docker.stack import Stack
from tests.docker.test_import import ACCEPT, IMPORT, lines


def imported(c: httpx.Client, r0: Registry0) -> dict[str, Any]:
    msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/base&tag=v1"))
    created = msgs[-3]
    assert created["type"] == "create-docker-image", msgs[-1]
    return created


def push_lines(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    assert "content-type" not in r.headers
    return [json.loads(line) for line in r.text.split("\r\n")[:-1]]


def test_push_to_a_registry(c: httpx.Client, r0: Registry0, stack: Stack) -> None:
    created = imported(c, r0)
    repo = f"test/pushed{stack.url.rsplit(':', 1)[1]}"  # a repository this test alone writes
    body = {k: created[k] for k in ("manifest_str", "image", "config_digest", "image_uuid")}
    layer = json.loads(created["manifest_str"])["layers"][0]["digest"]
    short = layer[7:19]
    url = f"/images/{created['image_uuid']}/push?repoAndTag={r0.host}/{repo}:v1"
    msgs = push_lines(c.post(url, json=body, headers={"x-request-id": "push-1"}))
    size = len(created["manifest_str"])
    digest = created["manifest_digest"]
    assert msgs[0] == {
        "type": "progress",
        "payload": {"id": short, "progressDetail": {}, "status": "Preparing"},
        "id": "push-1",
    }
    assert msgs[-2:] == [
        {"type": "progress", "payload": {"status": f"v1: digest: {digest} size: {size}"}, "id": "push-1"},
        {"type": "progress", "payload": {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": digest, "Size": size}}, "id": "push-1"},
    ]  # fmt: skip
    assert msgs[-3]["payload"] == {"id": short, "progressDetail": {}, "status": "Pushed"}
    r = httpx.get(f"http://{r0.host}/v2/{repo}/manifests/v1", headers={"Accept": ACCEPT})
    assert (r.headers["docker-content-digest"], r.text) == (digest, created["manifest_str"])

    again = push_lines(c.post(url, json=body, headers={"x-request-id": "push-2"}))
    assert again[:2] == [
        {"type": "progress", "payload": {"id": short, "progressDetail": {}, "status": "Preparing"}, "id": "push-2"},
        {"type": "progress", "payload": {"id": short, "progressDetail": {}, "status": "Layer already exists"}, "id": "push-2"},
    ]  # fmt: skip
    assert again[-1]["payload"]["aux"]["Digest"] == digest

    wrong = push_lines(
        c.post(url, json={**body, "config_digest": "sha256:" + "0" * 64}, headers={"x-request-id": "p3"})
    )
    assert wrong[-1]["type"] == "error" and wrong[-1]["error"]["code"] == "InvalidParameter"
    assert wrong[-1]["error"]["message"].startswith("image config digest does not match: sha256:")


def test_push_request_checks(c: httpx.Client, r0: Registry0) -> None:
    created = imported(c, r0)
    body = {k: created[k] for k in ("manifest_str", "image", "config_digest")}
    uuid = created["image_uuid"]
    r = c.post(f"/images/{uuid}/push", json=body)
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "repoAndTag", "code": "MissingParameter"}
    ]
    r = c.post(f"/images/{uuid}/push?repoAndTag={r0.host}/Bad/x:v1", json=body)
    assert r.status_code == 422 and r.json()["errors"] == [{"field": "repoAndTag", "code": "Invalid"}]
    r = c.post(f"/images/{uuid}/push?repoAndTag={r0.host}/test/x:v1", json={**body, "manifest_str": "{nope"})
    assert r.status_code == 422 and r.json() == {
        "code": "ValidationFailed",
        "message": "JSON parse of manifest_str failed",
        "errors": [{"field": "manifest_str", "code": "Invalid"}],
    }
    r = c.post(f"/images/{uuid}/push?repoAndTag={r0.host}/test/x:v1")
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "manifest_str", "code": "MissingParameter"}
    ]
    r = c.post("/images/00000000-0000-4000-8000-000000000009/push?repoAndTag=x/y:v1", json=body)
    assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"


def test_push_of_an_image_that_is_not_docker(c: httpx.Client) -> None:
    manifest = {"name": "plain", "version": "1.0.0", "type": "zone-dataset", "os": "smartos", "public": True,
                "owner": "00000000-0000-0000-0000-000000000000"}  # fmt: skip
    created = c.post("/images", json=manifest)
    assert created.status_code == 200, created.text
    r = c.post(
        f"/images/{created.json()['uuid']}/push?repoAndTag=127.0.0.1:1/x/y:v1", json={"manifest_str": "{}"}
    )
    assert (r.status_code, r.json()) == (
        422,
        {
            "code": "ValidationFailed",
            "message": "image is not a docker image",
            "errors": [{"field": "type", "code": "Invalid"}],
        },
    )
