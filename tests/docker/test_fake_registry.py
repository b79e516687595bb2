"""Faults only a fake registry produces: a corrupted layer (retried, then ``Download``), a blob
behind a 307 redirect (followed without credentials), a manifest without its digest header."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from replication.domain.docker.layers import layer_uuid
from tests.docker.fake_registry import FakeRegistry, fake_repo, start_fake_registry
from tests.docker.schema1_fake import schema1_repo
from tests.docker.stack import Stack
from tests.docker.test_import import IMPORT, lines

AUTH = {"x-registry-auth": base64.b64encode(b'{"username":"u","password":"p"}').decode()}


@pytest.fixture()
def fake(stack: Stack) -> Iterator[FakeRegistry]:
    tag = stack.url.rsplit(":", 1)[1]
    f = start_fake_registry(
        {
            "fake/bad": fake_repo(f"bad{tag}", "corrupt"),
            "fake/redir": fake_repo(f"redir{tag}", "redirect"),
            "fake/nodigest": fake_repo(f"nodigest{tag}", "nodigest"),
            "fake/breaks": fake_repo(f"breaks{tag}", "breaks", size=3_000_000),
            "fake/old": schema1_repo(f"old{tag}"),
            "fake/gone": fake_repo(f"gone{tag}", "breaks", size=100_000),
            "fake/unsigned": schema1_repo(f"unsigned{tag}", signed=False),
            "fake/probe": fake_repo(f"probe{tag}", "probe-fails"),
        }
    )
    yield f
    f.stop()


def test_corrupted_layer_fails_after_five_attempts(c: httpx.Client, fake: FakeRegistry) -> None:
    repo = fake.repos["fake/bad"]
    t0 = time.monotonic()
    msgs = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/bad&tag=v1", headers=AUTH))
    assert time.monotonic() - t0 >= 4
    short = repo.layer[7:19]
    attempts = [m for m in msgs if m["type"] == "progress"]
    assert [m["payload"] for m in attempts] == [{"id": short, "status": "Pulling fs layer"}] * 5
    got = "sha256:" + hashlib.sha256(bytes(b ^ 0xFF for b in repo.blobs[repo.layer])).hexdigest()
    assert msgs[-1] == {
        "type": "error",
        "id": f"{fake.host}/fake/bad",
        "error": {
            "code": "Download",
            "message": f"layer digest does not match, got {got}, expected {repo.layer}",
        },
    }
    assert c.get("/images?name=docker-layer&tag.docker:repo=" + f"{fake.host}/fake/bad").json() == []


def test_redirect_is_followed_without_credentials(c: httpx.Client, fake: FakeRegistry) -> None:
    msgs = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/redir&tag=v1", headers=AUTH))
    assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image"), msgs[-1]
    by_path = dict(fake.requests)
    layer = fake.repos["fake/redir"].layer
    assert by_path[f"/v2/fake/redir/blobs/{layer}"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert by_path[f"/elsewhere/fake/redir/{layer}"] is None


def test_private_probe_asks_again_without_credentials(c: httpx.Client, fake: FakeRegistry) -> None:
    """With credentials, the manifest is fetched a second time by digest anonymously; the answer
    is not reported, but a registry failing that request stops the import before it streams."""
    msgs = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/redir&tag=v1", headers=AUTH))
    assert msgs[-1]["payload"]["status"].startswith("Status: "), msgs[-1]
    digest = hashlib.sha256(fake.repos["fake/redir"].manifest).hexdigest()
    assert (f"/v2/fake/redir/manifests/sha256:{digest}", None) in fake.requests
    r = c.post(f"{IMPORT}&repo={fake.host}/fake/probe&tag=v1", headers=AUTH)
    assert lines(r) == [
        {
            "type": "error",
            "id": f"{fake.host}/fake/probe",
            "error": {"code": "InternalError", "message": "InternalServerError"},
        }
    ]
    assert "content-type" not in r.headers


def test_no_probe_without_credentials(c: httpx.Client, fake: FakeRegistry) -> None:
    msgs = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/probe&tag=v1"))
    assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image"), msgs[-1]
    assert not [p for p, _ in fake.requests if p.startswith("/v2/fake/probe/manifests/sha256:")]


def test_manifest_media_types_go_as_separate_accept_lines(c: httpx.Client, fake: FakeRegistry) -> None:
    msgs = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/nodigest&tag=v1"))
    assert msgs[-1]["payload"]["status"].startswith("Status: "), msgs[-1]
    assert [a for p, a in fake.accepts if p == "/v2/fake/nodigest/manifests/v1"] == [
        [
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ]
    ]


def test_manifest_without_digest_header(c: httpx.Client, fake: FakeRegistry) -> None:
    msgs = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/nodigest&tag=v1", headers=AUTH))
    digest = "sha256:" + hashlib.sha256(fake.repos["fake/nodigest"].manifest).hexdigest()
    assert msgs[-3]["manifest_digest"] == digest
    assert msgs[-2]["payload"]["status"] == f"Digest: {digest}"
    assert json.loads(msgs[-3]["manifest_str"])["schemaVersion"] == 2


def test_broken_transfer_continues_with_range(c: httpx.Client, fake: FakeRegistry) -> None:
    repo = fake.repos["fake/breaks"]
    size = len(repo.blobs[repo.layer])
    msgs = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/breaks&tag=v1", headers=AUTH))
    assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image"), msgs[-1]
    ranges = [r for path, r in fake.ranges if path == f"/v2/fake/breaks/blobs/{repo.layer}"]
    assert len(ranges) == 2 and ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert 0 < int(ranges[1][6:-1]) <= size // 2
    uuid = msgs[-3]["image_uuid"]
    assert c.get(f"/images/{uuid}/file").content == repo.blobs[repo.layer]


def test_schema1_manifest_is_converted(c: httpx.Client, fake: FakeRegistry) -> None:
    repo = fake.repos["fake/old"]
    msgs = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/old&tag=v1", headers=AUTH))
    assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image"), msgs[-1]
    # the layer's diff_id is computed once its download is complete, and that is reported
    assert [m["payload"] for m in msgs if m["type"] == "progress"] == [
        {"id": repo.layer[7:19], "status": s}
        for s in (
            "Pulling fs layer",
            "Download complete",
            "Uncompressing layer",
            "Uncompression completed",
            "Activating image",
            "Pull complete",
        )
    ]
    created = msgs[-3]
    text = created["manifest_str"]
    converted = json.loads(text)
    assert text == json.dumps(converted, indent=4)
    assert created["dockerImageVersion"] == "2.1"
    assert created["manifest_digest"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert msgs[-2]["payload"]["status"] == f"Digest: {created['manifest_digest']}"
    assert [layer["digest"] for layer in converted["layers"]] == [repo.layer]
    assert converted["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    config = created["image"]
    raw = gzip.decompress(repo.blobs[repo.layer])
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}
    assert [h.get("empty_layer", False) for h in config["history"]] == [False, True]
    assert "id" not in config and config["os"] == "linux"
    config_text = json.dumps(config, separators=(",", ":")).encode()
    assert (
        created["config_digest"]
        == converted["config"]["digest"]
        == "sha256:" + hashlib.sha256(config_text).hexdigest()
    )
    assert created["image_uuid"] == layer_uuid([repo.layer])  # as for a schema 2 manifest of the layer
    img = c.get(f"/images/{created['image_uuid']}").json()
    base_v1 = json.loads(json.loads(repo.manifest)["history"][1]["v1Compatibility"])
    assert img["description"] == " ".join(base_v1["container_config"]["Cmd"])
    again = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/old&tag=v1", headers=AUTH))
    # the layer's file keeps its uncompressed digest: nothing is decompressed again
    assert [m["payload"]["status"] for m in again if m["type"] == "progress"] == ["Already exists"]
    assert "uncompressedDigest" not in json.dumps(img) and "digest" not in img["files"][0]  # not shown
    assert again[-3] == created  # the reused layer's uncompressed digest is the same


def test_unsigned_schema1_manifest_is_refused(c: httpx.Client, fake: FakeRegistry) -> None:
    msgs = lines(c.post(f"{IMPORT}&repo={fake.host}/fake/unsigned&tag=v1", headers=AUTH))
    assert msgs == [
        {
            "type": "error",
            "id": f"{fake.host}/fake/unsigned",
            "error": {"code": "InternalError", "message": "schema 1 manifest is not signed"},
        }
    ]


def test_import_goes_on_when_the_caller_goes_away(stack: Stack, fake: FakeRegistry) -> None:
    """The caller hangs up after the first line; the layer's first transfer breaks, so the import
    is still running (its retry waits 1 s) when the connection closes, and it completes anyway."""
    repo = fake.repos["fake/gone"]
    uuid = layer_uuid([repo.layer])
    with (
        httpx.Client(base_url=stack.url, timeout=60) as c,
        c.stream("POST", f"{IMPORT}&repo={fake.host}/fake/gone&tag=v1", headers=AUTH) as r,
    ):
        assert json.loads(next(r.iter_lines()))["payload"]["status"].startswith("v1: Pulling from")
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=stack.url, timeout=60) as c:
        while (got := c.get(f"/images/{uuid}")).status_code != 200 or got.json()["state"] != "active":
            assert time.monotonic() < deadline, got.text
            time.sleep(0.1)
        assert c.get(f"/images/{uuid}/file").content == repo.blobs[repo.layer]
