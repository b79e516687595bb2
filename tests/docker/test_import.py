"""AdminImportDockerImage through REST against a real docker-registry on loopback (R0, no auth)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import pytest

from replication.domain.docker.layers import layer_uuid
from tests.components import free_port
from tests.docker.conftest import Registry0

IMPORT = "/images?action=import-docker-image"
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"


def lines(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    assert r.text.endswith("\r\n")
    return [json.loads(line) for line in r.text.split("\r\n")[:-1]]


def registry_manifest(host: str, repo: str, ref: str) -> tuple[bytes, str]:
    r = httpx.get(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
    assert r.status_code == 200
    return r.content, r.headers["docker-content-digest"]


def registry_blob(host: str, repo: str, digest: str) -> bytes:
    r = httpx.get(f"http://{host}/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    return r.content


def uuids_of(manifest: bytes) -> list[str]:
    digests = [layer["digest"] for layer in json.loads(manifest)["layers"]]
    return [layer_uuid(digests[: i + 1]) for i in range(len(digests))]


def test_input_validation(c: httpx.Client, r0: Registry0) -> None:
    repo = f"{r0.host}/test/base"
    cases: list[tuple[str, dict[str, str], int, dict[str, Any]]] = [
        (
            "&tag=v1",
            {},
            422,
            {
                "code": "ValidationFailed",
                "message": "missing parameters",
                "errors": [{"field": "repo", "code": "MissingParameter"}],
            },
        ),
        (
            f"&repo={repo}",
            {},
            422,
            {
                "code": "ValidationFailed",
                "message": "missing parameters",
                "errors": [
                    {
                        "field": "tag",
                        "code": "MissingParameter",
                        "message": 'one of "tag" or "digest" is required',
                    }
                ],
            },
        ),
        (
            f"&repo={repo}&tag=v1&digest=sha256:00",
            {},
            422,
            {
                "code": "ValidationFailed",
                "message": "missing parameters",
                "errors": [
                    {
                        "field": "digest",
                        "code": "Invalid",
                        "message": 'cannot specify both "tag" and "digest"',
                    }
                ],
            },
        ),
        (
            f"&repo={repo}&tag=v1&account=91ba0e64-2547-11e2-a972-df579e5fddb3",
            {},
            403,
            {"code": "OperatorOnly", "message": "this endpoint may only be called by an operator"},
        ),
        (
            f"&repo={r0.host}/Test/Base&tag=v1",
            {},
            422,
            {
                "code": "ValidationFailed",
                "message": "invalid repository namespace, may only contain [a-z0-9._-] characters: Test",
                "errors": [{"field": "repo", "code": "Invalid"}],
            },
        ),
        (
            f"&repo={repo}&tag=v1&public=yes",
            {},
            422,
            {
                "code": "InvalidParameter",
                "message": 'invalid value for "public" param: "yes" is not a boolean',
                "errors": [{"field": "public", "code": "Invalid"}],
            },
        ),
        (
            f"&repo={repo}&tag=v1",
            {"x-registry-auth": base64.b64encode(b'{"identitytoken":"t"}').decode()},
            400,
            {
                "code": "NotImplemented",
                "message": 'OAuth to Docker registry is not yet supported, please "docker logout" '
                'and "docker login" and try again',
            },
        ),
    ]
    for query, headers, status, body in cases:
        r = c.post(IMPORT + query, headers=headers)
        assert (r.status_code, r.headers["content-type"].split(";")[0]) == (status, "application/json"), query
        assert r.json() == body, query


def test_fresh_import_then_child_then_again(c: httpx.Client, r0: Registry0) -> None:
    base_manifest, _ = registry_manifest(r0.host, "test/base", "v1")
    child_manifest, child_digest = registry_manifest(r0.host, "test/child", "v2s2")
    (base_uuid,) = uuids_of(base_manifest)
    assert uuids_of(child_manifest)[0] == base_uuid
    head_uuid = uuids_of(child_manifest)[1]
    base_layer = json.loads(base_manifest)["layers"][0]
    short = base_layer["digest"][7:19]
    repo = f"{r0.host}/test/base"

    # 2. fresh import of base
    r = c.post(f"{IMPORT}&repo={repo}&tag=v1", headers={"x-request-id": "req-1"})
    assert r.headers["content-type"].startswith("application/json")
    msgs = lines(r)
    ident = repo
    assert msgs == [
        {"type": "status", "payload": {"status": f"v1: Pulling from {repo} (req req-1)"}, "id": ident},
        {
            "type": "status",
            "payload": {"id": short, "progressDetail": {}, "status": "Pulling fs layer"},
            "id": ident,
        },
        {"type": "progress", "payload": {"id": short, "status": "Pulling fs layer"}, "id": ident},
        {"type": "progress", "payload": {"id": short, "status": "Download complete"}, "id": ident},
        {"type": "progress", "payload": {"id": short, "status": "Activating image"}, "id": ident},
        {"type": "progress", "payload": {"id": short, "status": "Pull complete"}, "id": ident},
        msgs[6],
        {"type": "status", "payload": {"status": f"Digest: {msgs[6]['manifest_digest']}"}, "id": ident},
        {
            "type": "status",
            "payload": {"status": f"Status: Downloaded newer image for {repo}:v1"},
            "id": ident,
        },
    ]
    assert list(r.text.split("\r\n")[0]) == list(json.dumps(msgs[0], separators=(",", ":")))
    img = c.get(f"/images/{base_uuid}").json()
    assert img == {
        "v": 2,
        "uuid": base_uuid,
        "owner": "00000000-0000-0000-0000-000000000000",
        "name": "docker-layer",
        "version": short,
        "state": "active",
        "disabled": False,
        "public": True,
        "published_at": "2020-01-02T03:04:05.000Z",
        "type": "docker",
        "os": "other",
        "files": [{"sha1": img["files"][0]["sha1"], "size": base_layer["size"], "compression": "gzip"}],
        "description": "/bin/sh -c #(nop) ADD file:hello in / ",
        "tags": {"docker:repo": repo, "docker:id": base_layer["digest"]},
    }
    blob = registry_blob(r0.host, "test/base", base_layer["digest"])
    f = c.get(f"/images/{base_uuid}/file")
    assert f.content == blob
    assert f.headers["content-md5"] == base64.b64encode(hashlib.md5(blob).digest()).decode()
    assert img["files"][0]["sha1"] == hashlib.sha1(blob).hexdigest()

    # 3. child after base: the base layer is reused
    crepo = f"{r0.host}/test/child"
    msgs = lines(c.post(f"{IMPORT}&repo={crepo}&tag=v2s2"))
    head_short = json.loads(child_manifest)["layers"][1]["digest"][7:19]
    statuses = [(m["payload"].get("id"), m["payload"].get("status")) for m in msgs if m["type"] == "progress"]
    per_layer: dict[str, list[str]] = {}
    for ident_, status in statuses:
        per_layer.setdefault(ident_, []).append(status)
    assert per_layer == {
        short: ["Already exists"],
        head_short: ["Pulling fs layer", "Download complete", "Activating image", "Pull complete"],
    }
    assert statuses[-2:] == [(head_short, "Activating image"), (head_short, "Pull complete")]
    created = msgs[-3]
    config_digest = json.loads(child_manifest)["config"]["digest"]
    config = json.loads(registry_blob(r0.host, "test/child", config_digest))
    sizes = sum(layer["size"] for layer in json.loads(child_manifest)["layers"])
    assert created == {
        "type": "create-docker-image",
        "config_digest": config_digest,
        "head": True,
        "image": config,
        "image_uuid": head_uuid,
        "manifest_digest": child_digest,
        "manifest_str": child_manifest.decode(),
        "size": sizes,
        "dockerImageVersion": "2.2",
        "id": crepo,
    }
    assert msgs[-1]["payload"]["status"] == f"Status: Downloaded newer image for {crepo}:v2s2"
    head = c.get(f"/images/{head_uuid}").json()
    assert head["origin"] == base_uuid and head["os"] == "linux"
    assert head["tags"] == {
        "docker:repo": crepo,
        "docker:id": json.loads(child_manifest)["layers"][1]["digest"],
        "docker:architecture": "amd64",
        "docker:config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"], "WorkingDir": "/"},
    }
    assert "description" not in head  # the head layer JSON is the config: no comment, no container_config

    # 4. the same import again changes nothing
    before = {u: c.get(f"/images/{u}") for u in (base_uuid, head_uuid)}
    msgs = lines(c.post(f"{IMPORT}&repo={crepo}&tag=v2s2"))
    assert [m["payload"]["status"] for m in msgs if m["type"] == "progress"] == ["Already exists"] * 2
    assert msgs[-3] == created
    assert msgs[-1]["payload"]["status"] == f"Status: Image is up to date for {crepo}:v2s2"
    for u, old in before.items():
        now = c.get(f"/images/{u}")
        assert (now.json(), now.headers["etag"]) == (old.json(), old.headers["etag"])

    # 5. by digest
    msgs = lines(c.post(f"{IMPORT}&repo={crepo}&digest={child_digest}"))
    assert msgs[0]["payload"]["status"].startswith(f"{child_digest}: Pulling from {crepo}")
    assert msgs[-1]["payload"]["status"] == f"Status: Image is up to date for {crepo}@{child_digest}"

    # 6. a manifest list: linux/amd64 is picked; same layers as child
    mrepo = f"{r0.host}/test/multi"
    msgs = lines(c.post(f"{IMPORT}&repo={mrepo}&tag=v1"))
    assert msgs[-3]["image_uuid"] == head_uuid
    assert msgs[-3]["manifest_digest"] == child_digest
    assert msgs[-2]["payload"]["status"] == f"Digest: {child_digest}"
    msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/armonly&tag=v1"))
    assert msgs[-1] == {
        "type": "error",
        "id": f"{r0.host}/test/armonly",
        "error": {
            "code": "ValidationFailed",
            "message": "no linux-amd64 platform found in manifest list: linux-arm64",
        },
    }


@pytest.mark.parametrize("what", ["test/child:oci", "test/child:nope", "test/nope:v1"])
def test_not_found(c: httpx.Client, r0: Registry0, what: str) -> None:
    before = c.get("/images?state=all").json()
    repo, tag = what.split(":")
    r = c.post(f"{IMPORT}&repo={r0.host}/{repo}&tag={tag}")
    assert lines(r) == [
        {
            "type": "error",
            "id": f"{r0.host}/{repo}",
            "error": {"code": "ResourceNotFound", "message": "NotFoundError"},
        }
    ]
    assert "content-type" not in r.headers  # failed before its progress stream started
    assert c.get("/images?state=all").json() == before


def test_closed_port(c: httpx.Client) -> None:
    r = c.post(f"{IMPORT}&repo=127.0.0.1:{free_port()}/test/base&tag=v1")
    msgs = lines(r)
    assert len(msgs) == 1 and msgs[0]["error"]["code"] == "RemoteSourceError"
    assert "content-type" not in r.headers
    assert "ECONNREFUSED" in msgs[0]["error"]["message"]


def test_big_layer_reports_downloading(c: httpx.Client, r0: Registry0) -> None:
    manifest, _ = registry_manifest(r0.host, "test/big", "v1")
    size = json.loads(manifest)["layers"][0]["size"]
    msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/big&tag=v1"))
    assert "error" not in msgs[-1], msgs[-1]
    details = [
        m["payload"]["progressDetail"] for m in msgs if m.get("payload", {}).get("status") == "Downloading"
    ]
    assert details, msgs
    assert all(d["total"] == size and isinstance(d["start"], int) for d in details)
    currents = [d["current"] for d in details]
    assert currents == sorted(currents) and len(set(currents)) == len(currents)
    assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image")


def test_uncompressed_layer(c: httpx.Client, r0: Registry0) -> None:
    msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/raw&tag=v1"))
    assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image"), msgs[-1]
    img = c.get(f"/images/{msgs[-3]['image_uuid']}").json()
    assert img["files"][0]["compression"] == "none"


def test_config_without_history(c: httpx.Client, r0: Registry0) -> None:
    msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/test/nohist&tag=v1"))
    assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image"), msgs[-1]
    img = c.get(f"/images/{msgs[-3]['image_uuid']}").json()
    assert (img["os"], img["published_at"]) == ("linux", "2020-01-02T03:04:05.000Z")
