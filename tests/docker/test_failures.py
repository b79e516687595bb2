"""Concurrent imports sharing layers, and a layer that vanished from the registry (nothing is
written until every layer is downloaded)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.docker.conftest import Registry0
from tests.docker.oci import Image, Layout, Step, noise, skopeo_push
from tests.docker.stack import Stack
from tests.docker.test_import import IMPORT, lines, registry_blob, registry_manifest, uuids_of


def push(tmp: Path, r0: Registry0, repo: str, image: Image) -> None:
    layout = Layout(tmp / "oci")
    layout.tag("img", layout.image(image))
    skopeo_push(layout.root, "img", f"{r0.host}/{repo}:v1")


def test_concurrent_imports_of_the_same_layers(stack: Stack, r0: Registry0, tmp_path: Path) -> None:
    seed = int(stack.url.rsplit(":", 1)[1])
    image = Image(
        [
            Step("/bin/sh -c #(nop) ADD file:a in / ", {"a.bin": noise(700_000, seed)}),
            Step("/bin/sh -c #(nop) ADD file:b in / ", {"b.bin": noise(900_000, seed + 1)}),
        ]
    )
    repo = f"test/together{seed}"
    push(tmp_path, r0, repo, image)
    results: list[list[dict[str, Any]]] = []

    def one() -> None:
        with httpx.Client(base_url=stack.url, timeout=60) as c:
            results.append(lines(c.post(f"{IMPORT}&repo={r0.host}/{repo}&tag=v1")))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert len(results) == 2
    for msgs in results:
        assert msgs[-1]["payload"]["status"].startswith("Status: "), msgs[-1]
    manifest, _ = registry_manifest(r0.host, repo, "v1")
    layers = json.loads(manifest)["layers"]
    with httpx.Client(base_url=stack.url, timeout=60) as c:
        for uuid, layer in zip(uuids_of(manifest), layers, strict=True):
            img = c.get(f"/images/{uuid}").json()
            blob = registry_blob(r0.host, repo, layer["digest"])
            assert img["state"] == "active"
            assert img["files"] == [
                {"sha1": hashlib.sha1(blob).hexdigest(), "size": len(blob), "compression": "gzip"}
            ]
            assert c.get(f"/images/{uuid}/file").content == blob
        found = c.get(f"/images?name=docker-layer&tag.docker:repo={r0.host}/{repo}").json()
        assert sorted(i["uuid"] for i in found) == sorted(uuids_of(manifest))


def test_missing_layer_blob_creates_nothing(stack: Stack, r0: Registry0, tmp_path: Path) -> None:
    seed = int(stack.url.rsplit(":", 1)[1]) + 7
    image = Image(
        [
            Step("/bin/sh -c #(nop) ADD file:a in / ", {"a.txt": f"a{seed}".encode()}),
            Step("/bin/sh -c #(nop) ADD file:b in / ", {"b.txt": f"b{seed}".encode()}),
        ]
    )
    repo = f"test/broken{seed}"
    push(tmp_path, r0, repo, image)
    manifest, _ = registry_manifest(r0.host, repo, "v1")
    top = json.loads(manifest)["layers"][1]["digest"]
    assert httpx.delete(f"http://{r0.host}/v2/{repo}/blobs/{top}").status_code == 202
    with httpx.Client(base_url=stack.url, timeout=60) as c:
        msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/{repo}&tag=v1"))
        assert msgs[-1]["error"] == {"code": "ResourceNotFound", "message": "NotFoundError"}
        for uuid in uuids_of(manifest):
            assert c.get(f"/images/{uuid}").status_code == 404
        push(tmp_path / "again", r0, repo, image)
        msgs = lines(c.post(f"{IMPORT}&repo={r0.host}/{repo}&tag=v1"))
        assert msgs[-1]["payload"]["status"].startswith("Status: Downloaded newer image"), msgs[-1]
        assert {m["payload"]["status"] for m in msgs if m["type"] == "progress"} >= {"Download complete"}
