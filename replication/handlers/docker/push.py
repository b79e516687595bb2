"""AdminPushDockerImage: a docker image chain of this IMGAPI back to a registry.

The caller sends what an import's ``create-docker-image`` message gave it (``manifest_str``,
``image``, ``config_digest``); each layer of the manifest is found here by its derived UUID, its
file uploaded unless the registry has it, then the config and the manifest are stored under the tag.
Progress lines carry the request id as ``id``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from imgapi.v1 import docker_pb2

from blob_client import BlobError
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, validation_failed
from replication.adapters.destination import Destination
from replication.adapters.docker.registry import Credentials, PushSession, RegistryAnswer
from replication.domain.docker.layers import layer_uuid, short_id
from replication.domain.docker.progress import dumps
from replication.domain.docker.reference import Reference, ReferenceError, parse_reference
from replication.handlers.docker.credentials import select_credentials

PARALLEL_LAYERS = 3
PUSHING_EVERY_SECONDS = 2.0
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"


@dataclass(frozen=True)
class PushRequest:
    reference: Reference
    manifest_str: str
    manifest: dict[str, Any]
    image: Any
    config_digest: str
    credentials: Credentials | None
    request_id: str


def check_push(req: docker_pb2.PushDockerImageRequest) -> PushRequest:
    """``repoAndTag`` (a tag, not a digest), the body (``manifest_str`` JSON), the credentials."""
    if not req.HasField("repo_and_tag") or not req.repo_and_tag:
        raise validation_failed("missing parameters", [FieldError("repoAndTag", "MissingParameter")])
    try:
        ref = parse_reference(req.repo_and_tag)
    except ReferenceError as e:
        raise validation_failed(str(e), [FieldError("repoAndTag", "Invalid")]) from None
    if ref.digest:
        raise validation_failed("repoAndTag must name a tag", [FieldError("repoAndTag", "Invalid")])
    try:
        body = json.loads(req.body_json) if req.HasField("body_json") and req.body_json else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("manifest_str"), str):
        raise validation_failed("missing parameters", [FieldError("manifest_str", "MissingParameter")])
    try:
        manifest = json.loads(body["manifest_str"])
    except ValueError:
        raise validation_failed(
            "JSON parse of manifest_str failed", [FieldError("manifest_str", "Invalid")]
        ) from None
    if not isinstance(manifest, dict):
        raise validation_failed("JSON parse of manifest_str failed", [FieldError("manifest_str", "Invalid")])
    creds = select_credentials(
        ref.repository.index_name, req.registry_auth if req.HasField("registry_auth") else None, None
    )
    return PushRequest(
        ref,
        body["manifest_str"],
        manifest,
        body.get("image"),
        str(body.get("config_digest", "")),
        creds,
        req.caller.request_id,
    )


class PushFailed(Exception):
    """Ends the push with an error line (``code`` omitted when empty)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class DockerPush:
    def __init__(
        self, req: PushRequest, registry: PushSession, dest: Destination, emit: Callable[[str], None]
    ):
        self.req = req
        self.registry = registry
        self.dest = dest
        self._emit = emit
        self._lock = threading.Lock()

    def _send(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self._emit(dumps({**obj, "id": self.req.request_id}))

    def _layer(self, short: str, status: str, detail: dict[str, Any] | None = None) -> None:
        self._send(
            {"type": "progress", "payload": {"id": short, "progressDetail": detail or {}, "status": status}}
        )

    def run(self) -> None:
        try:
            self._run()
        except PushFailed as e:
            error = {"code": e.code, "message": e.message} if e.code else {"message": e.message}
            self._send({"type": "error", "error": error})
        except ImgapiError as e:
            self._send({"type": "error", "error": {"code": e.code, "message": e.message}})
        except RegistryAnswer as e:
            self._send({"type": "error", "error": {"message": e.message}})

    def _run(self) -> None:
        try:
            r = self.registry.ping()
        except ImgapiError as e:  # the network: the code is the system error's name
            words = e.message.split()
            raise PushFailed(
                e.message, words[1] if e.message.startswith("connect ") and len(words) > 2 else ""
            ) from None
        if r.status_code == 401:
            self.registry.challenge(r)
        elif r.status_code != 200:
            if r.status_code < 400:
                raise ImgapiError(
                    "NotAvailable", f"registry {self.req.reference.repository.index_name} does not support v2"
                )
            raise ImgapiError("InternalError", f"registry answered {r.status_code}")
        layers = self.req.manifest.get("layers") or []
        digests = [str(layer.get("digest", "")) for layer in layers]
        images = []
        for i in range(len(digests)):
            uuid = layer_uuid(digests[: i + 1])
            image = self.dest.get(uuid)
            if image is None or image.state != "active" or not image.files:
                raise ImgapiError("ResourceNotFound", f"image {uuid} not found")
            images.append(image)
        missing = [d for d in digests if not self._exists(d)]
        self.registry.authorize("pull,push")
        with ThreadPoolExecutor(PARALLEL_LAYERS, thread_name_prefix="docker-push") as pool:
            for f in [pool.submit(self._push_layer, d, images[digests.index(d)]) for d in missing]:
                f.result()
        self._push_config()
        tag = self.req.reference.tag
        version = self.req.manifest.get("schemaVersion", 2)
        media_type = f"application/vnd.docker.distribution.manifest.v{version}+json"
        body = self.req.manifest_str.encode()
        digest = self.registry.put_manifest(tag, body, media_type)
        size = len(self.req.manifest_str)
        self._send({"type": "progress", "payload": {"status": f"{tag}: digest: {digest} size: {size}"}})
        self._send(
            {
                "type": "progress",
                "payload": {"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}},
            }
        )

    def _exists(self, digest: str) -> bool:
        short = short_id(digest)
        self._layer(short, "Preparing")
        if self.registry.blob_exists(digest):
            self._layer(short, "Layer already exists")
            return True
        return False

    def _push_layer(self, digest: str, image: Any) -> None:
        short = short_id(digest)
        f = image.files[0]
        sent = [0, time.monotonic()]

        def data() -> Iterator[bytes]:
            try:
                for piece in self.dest.blobs.read(f.blob_id):
                    yield piece
                    sent[0] += len(piece)
                    if time.monotonic() - sent[1] >= PUSHING_EVERY_SECONDS:
                        sent[1] = time.monotonic()
                        self._layer(short, "Pushing", {"current": sent[0], "total": f.size})
            except BlobError as e:
                raise ImgapiError("InternalError", f"{e.reason}: {e.message}") from None

        try:
            self.registry.upload_blob(digest, f.size, data())
        except (RegistryAnswer, ImgapiError):
            self._layer(short, "Image push failed")
            raise
        self._layer(short, "Pushed")

    def _push_config(self) -> None:
        text = json.dumps(self.req.image, separators=(",", ":"), ensure_ascii=False).encode()
        computed = "sha256:" + hashlib.sha256(text).hexdigest()
        if computed != self.req.config_digest:
            raise invalid_parameter(
                f"image config digest does not match: {computed} != {self.req.config_digest}"
            )
        self.registry.upload_blob(computed, len(text), text, CONFIG_MEDIA_TYPE)
