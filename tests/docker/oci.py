"""Deterministic OCI image layouts made by the tests (fixed tar metadata, gzip mtime 0), pushed to a
registry with skopeo, and the digests the registry then serves."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CREATED = "2020-01-02T03:04:05Z"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Step:
    """One history entry: a layer with ``files``, or an empty (metadata) step when ``files`` is None."""

    created_by: str
    files: dict[str, bytes] | None = None


@dataclass
class Image:
    steps: list[Step]
    architecture: str = "amd64"
    config: dict[str, Any] = field(
        default_factory=lambda: {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"}
    )
    history: bool = True


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 1577934245, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    """An OCI layout directory being written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.index: list[dict[str, Any]] = []

    def blob(self, data: bytes) -> str:
        digest = _sha(data)
        (self.root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return digest

    def image(self, img: Image) -> dict[str, Any]:
        """Write the blobs of ``img``; its manifest descriptor."""
        layers, diff_ids, history = [], [], []
        for s in img.steps:
            entry: dict[str, Any] = {"created": CREATED, "created_by": s.created_by}
            if s.files is None:
                entry["empty_layer"] = True
            else:
                raw = tar_bytes(s.files)
                gz = gzip.compress(raw, mtime=0)
                layers.append({"mediaType": OCI_LAYER_GZIP, "digest": self.blob(gz), "size": len(gz)})
                diff_ids.append(_sha(raw))
            history.append(entry)
        config: dict[str, Any] = {
            "created": CREATED,
            "architecture": img.architecture,
            "os": "linux",
            "config": img.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if img.history:
            config["history"] = history
        cfg = json.dumps(config, separators=(",", ":")).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.blob(cfg), "size": len(cfg)},
            "layers": layers,
        }
        body = json.dumps(manifest, separators=(",", ":")).encode()
        return {"mediaType": OCI_MANIFEST, "digest": self.blob(body), "size": len(body)}

    def tag(self, ref: str, descriptor: dict[str, Any]) -> None:
        self.index.append({**descriptor, "annotations": {"org.opencontainers.image.ref.name": ref}})
        index = {"schemaVersion": 2, "manifests": self.index}
        (self.root / "index.json").write_text(json.dumps(index))

    def multi(self, ref: str, platforms: list[tuple[str, Image]]) -> None:
        entries = []
        for arch, img in platforms:
            d = self.image(img)
            entries.append({**d, "platform": {"os": "linux", "architecture": arch}})
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        self.tag(ref, {"mediaType": OCI_INDEX, "digest": self.blob(body), "size": len(body)})


def skopeo_push(
    layout: Path, ref: str, dest: str, *, creds: str = "", oci_format: bool = False, all_images: bool = False
) -> None:
    """``skopeo copy oci:<layout>:<ref> docker://<dest>`` (Docker v2s2 media types unless
    ``oci_format``)."""
    args = ["skopeo", "copy", "--insecure-policy", "--dest-tls-verify=false", "--quiet"]
    if not oci_format:
        args += ["--format", "v2s2"]
    if creds:
        args += ["--dest-creds", creds]
    if all_images:
        args += ["--all"]
    args += [f"oci:{layout}:{ref}", f"docker://{dest}"]
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(layout.parent / "auth.json")}
    subprocess.run(args, check=True, env=env, capture_output=True, timeout=60)


def noise(n: int, seed: int) -> bytes:
    """``n`` deterministic incompressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def push_uncompressed(host: str, repo: str, tag: str, files: dict[str, bytes]) -> str:
    """Push a one-layer image whose layer is a plain tar (``...rootfs.diff.tar``) through the
    registry API (skopeo would compress it); the layer digest."""
    import httpx

    layer = tar_bytes(files)
    config = json.dumps(
        {
            "created": CREATED,
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [_sha(layer)]},
            "history": [{"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD file:raw in / "}],
        },
        separators=(",", ":"),
    ).encode()
    base = f"http://{host}/v2/{repo}"
    for data in (layer, config):
        start = httpx.post(f"{base}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = httpx.URL(f"http://{host}").join(start.headers["location"])
        put = httpx.put(location.copy_merge_params({"digest": _sha(data)}), content=data)
        assert put.status_code == 201, put.text
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config),
            "digest": _sha(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                "size": len(layer),
                "digest": _sha(layer),
            }
        ],
    }
    r = httpx.put(
        f"{base}/manifests/{tag}",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert r.status_code == 201, r.text
    return _sha(layer)
