"""A fake registry for the faults a real one will not produce: a blob whose bytes do not match its
digest, a blob behind a 307 redirect, a manifest without ``Docker-Content-Digest``. It asks for
Basic auth and records every request's path and ``Authorization``."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.docker.loopback import serve
from tests.docker.oci import CREATED, noise, tar_bytes

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRepo:
    manifest: bytes
    blobs: dict[str, bytes]
    layer: str
    #: "corrupt" | "redirect" | "nodigest" | "breaks" (the first layer transfer stops halfway) |
    #: "stalls" (the first layer transfer stops halfway until ``release`` is set) | ""
    fault: str = ""
    broken: bool = False
    release: threading.Event = field(default_factory=threading.Event)


def fake_repo(text: str, fault: str, size: int = 0) -> FakeRepo:
    raw = tar_bytes({f"{text}.txt": text.encode() + noise(size, len(text))})
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps(
        {
            "created": CREATED,
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha(raw)]},
            "history": [{"created": CREATED, "created_by": f"/bin/sh -c #(nop) ADD file:{text} in / "}],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": sha(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer),
                    "digest": sha(layer),
                }
            ],
        }
    ).encode()
    return FakeRepo(manifest, {sha(config): config, sha(layer): layer}, sha(layer), fault)


@dataclass
class FakeRegistry:
    port: int
    repos: dict[str, FakeRepo]
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    #: (path, the request's ``Accept`` lines)
    accepts: list[tuple[str, list[str]]] = field(default_factory=list)
    #: (path, Range header) of every request
    ranges: list[tuple[str, str | None]] = field(default_factory=list)
    stop: Callable[[], None] = lambda: None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_fake_registry(repos: dict[str, FakeRepo]) -> FakeRegistry:
    box: list[FakeRegistry] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _breaking(self, repo: FakeRepo, data: bytes) -> None:
            """The first transfer announces everything and stops halfway; later ones honour Range."""
            if not repo.broken:
                repo.broken = True
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                if repo.fault == "stalls":
                    repo.release.wait(120)
                self.close_connection = True
                return
            first = int((self.headers.get("Range") or "bytes=0-").removeprefix("bytes=").split("-")[0])
            self._send(
                206 if first else 200,
                data[first:],
                {"Content-Range": f"bytes {first}-{len(data) - 1}/{len(data)}"},
            )

        def do_GET(self) -> None:
            fake = box[0]
            fake.requests.append((self.path, self.headers.get("Authorization")))
            fake.ranges.append((self.path, self.headers.get("Range")))
            fake.accepts.append((self.path, self.headers.get_all("Accept") or []))
            if self.path == "/v2/":
                self._send(401, b"{}", {"WWW-Authenticate": 'Basic realm="fake"'})
                return
            if self.path.startswith("/elsewhere/"):
                name, digest = self.path.removeprefix("/elsewhere/").rsplit("/", 1)
                self._send(200, fake.repos[name].blobs[digest])
                return
            parts = self.path.removeprefix("/v2/").rsplit("/", 2)
            if len(parts) != 3 or parts[0] not in fake.repos:
                self._send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
                return
            name, kind, ref = parts
            repo = fake.repos[name]
            if kind == "manifests" and repo.fault == "probe-fails" and ref.startswith("sha256:"):
                self._send(500, b'{"errors":[{"code":"UNKNOWN"}]}')
            elif kind == "manifests":
                v1 = repo.fault == "schema1"
                media = "application/vnd.docker.distribution.manifest.v1+prettyjws" if v1 else MANIFEST_V2
                headers = {"Content-Type": media}
                if repo.fault not in ("nodigest", "schema1"):
                    headers["Docker-Content-Digest"] = sha(repo.manifest)
                self._send(200, repo.manifest, headers)
            elif kind == "blobs" and ref in repo.blobs:
                data = repo.blobs[ref]
                if ref == repo.layer and repo.fault == "corrupt":
                    self._send(200, bytes(b ^ 0xFF for b in data))
                elif ref == repo.layer and repo.fault in ("breaks", "stalls"):
                    self._breaking(repo, data)
                elif ref == repo.layer and repo.fault == "redirect":
                    self._send(307, b"", {"Location": f"/elsewhere/{name}/{ref}"})
                else:
                    self._send(200, data)
            else:
                self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')

    port, stop = serve(Handler, "fake-registry")
    fake = FakeRegistry(port, repos, stop=stop)
    box.append(fake)
    return fake
