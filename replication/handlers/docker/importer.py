"""One Docker import, from the registry conversation to the last progress message.

Nothing is written to the catalog until every layer has been downloaded (into the blob service);
then the new layer images are created, given their file and activated one by one, base first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from imgapi.v1 import catalog_pb2, image_pb2

from imgapi_common.errors import ImgapiError
from replication.adapters.destination import VIEW, Destination, DestinationError
from replication.adapters.docker.registry import LISTS, Registry
from replication.domain.docker.layers import Layer, layer_manifest, layers_of
from replication.domain.docker.progress import Progress
from replication.handlers.docker.pull import Cancelled, LayerPuller, Pulled
from replication.handlers.docker.request import ImportRequest
from replication.handlers.docker.schema1 import (
    Schema1Image,
    parse_schema1,
    uncompressed_digest,
    upconvert,
    verified_payload,
)

log = logging.getLogger(__name__)

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
PARALLEL_LAYERS = 5
_uuid_locks: dict[str, threading.Lock] = {}
_uuid_locks_lock = threading.Lock()


def _uuid_lock(uuid: str) -> threading.Lock:
    """Commits of one layer image are serialized in this process (concurrent imports share layers)."""
    with _uuid_locks_lock:
        return _uuid_locks.setdefault(uuid, threading.Lock())


def _parse_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as e:
        raise ImgapiError("InternalError", f"invalid JSON in {what}: {e}") from None


class DockerImport:
    def __init__(
        self,
        req: ImportRequest,
        registry: Registry,
        dest: Destination,
        progress: Progress,
        stored: Callable[[str, str], None] | None = None,
    ) -> None:
        self.req = req
        #: Told (layer uuid, blob id) of each layer blob as soon as it is in the blob service.
        self.stored = stored
        self.repo = req.reference.repository
        self.registry = registry
        self.dest = dest
        self.progress = progress
        self.mode = "dc"
        self.owner = ZERO_UUID
        #: The image of a schema 1 manifest (up-converted after the downloads), else None.
        self.schema1: Schema1Image | None = None

    # --- the registry side ---------------------------------------------------------------------

    def _named(self) -> str:
        return f"{self.repo.local_name}:{self.req.reference.ref}"

    def _manifest(self) -> tuple[bytes, str, dict[str, Any]]:
        m = self.registry.manifest(self.req.reference.ref)
        body = _parse_json(m.body, f"{self._named()} manifest")
        if not isinstance(body, dict):
            raise ImgapiError("InternalError", f"invalid manifest for {self._named()}")
        if int(body.get("schemaVersion") or 0) > 2:
            raise ImgapiError(
                "InternalError",
                f"unsupported schema version {body['schemaVersion']} in {self._named()} manifest",
            )
        if body.get("mediaType") in LISTS or m.media_type in LISTS:
            text, digest, body = self._platform(body)
        else:
            text, digest = m.body, m.digest
        self._check_layers(body)
        if body.get("schemaVersion") == 1:
            payload = verified_payload(m.body, body, m.header_digest)
            return m.body, "sha256:" + hashlib.sha256(payload).hexdigest(), body
        return text, digest, body

    def _check_layers(self, body: dict[str, Any]) -> None:
        if body.get("schemaVersion") == 1:
            fs, history = body.get("fsLayers"), body.get("history")
            if not isinstance(fs, list) or not fs:
                raise ImgapiError("InternalError", f"no layers in {self._named()} manifest")
            if not isinstance(history, list) or len(history) != len(fs):
                raise ImgapiError(
                    "InternalError", f"history length not equal to layers length in {self._named()} manifest"
                )
        elif not body.get("layers"):
            raise ImgapiError("InternalError", f"no layers in {self._named()} manifest")

    def _platform(self, listing: dict[str, Any]) -> tuple[bytes, str, dict[str, Any]]:
        entries = listing.get("manifests")
        if not isinstance(entries, list) or not entries:
            raise ImgapiError("InternalError", f"no manifests in {self._named()} manifest list")
        names = []
        for e in entries:
            p = e.get("platform") if isinstance(e, dict) else None
            if isinstance(p, dict) and p.get("os") == "linux" and p.get("architecture") == "amd64":
                m = self.registry.manifest(str(e.get("digest", "")))
                body = _parse_json(m.body, f"{self._named()} manifest")
                return m.body, m.digest, body
            names.append(f"{p.get('os')}-{p.get('architecture')}" if isinstance(p, dict) else "<unknown>")
        raise ImgapiError(
            "ValidationFailed", f"no linux-amd64 platform found in manifest list: {','.join(names)}"
        )

    def _layers(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], str, list[Layer]]:
        if manifest.get("schemaVersion") == 1:
            return self._schema1_layers(manifest)
        config_digest = str((manifest.get("config") or {}).get("digest", ""))
        raw = self.registry.blob(config_digest)
        got = "sha256:" + hashlib.sha256(raw).hexdigest()
        if got != config_digest:
            raise ImgapiError(
                "Download", f"config digest does not match, got {got}, expected {config_digest}"
            )
        try:
            config = json.loads(raw)
        except ValueError as e:
            raise ImgapiError(
                "ValidationFailed", f"invalid JSON for docker config, digest {config_digest}, err {e}"
            ) from None
        return config, config_digest, layers_of(manifest, config)

    def _schema1_layers(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], str, list[Layer]]:
        """The layers of a schema 1 manifest (their diff_ids are known only after the downloads)."""
        self.schema1 = parse_schema1(manifest)
        n = len(self.schema1.non_empty)
        config, _, converted, _ = upconvert(self.schema1, [""] * n, [0] * n, ["gzip"] * n)
        return config, "", layers_of(converted, config)

    def _converted(self, pulled: list[Pulled]) -> tuple[dict[str, Any], str, bytes, str]:
        """After the downloads of a schema 1 image: its config, config digest, manifest text and
        digest as a schema 2 image; the layers get their diff_ids."""
        assert self.schema1 is not None
        diff_ids = [
            uncompressed_digest(self.dest.blobs, p, functools.partial(self.progress.layer, p.layer.short))
            for p in pulled
        ]
        config, _, converted, text = upconvert(
            self.schema1, diff_ids, [p.size for p in pulled], [p.compression for p in pulled]
        )
        for p, layer in zip(pulled, layers_of(converted, config), strict=True):
            p.layer = layer
        digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        return config, converted["config"]["digest"], text.encode(), digest

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> None:
        """The whole import; failures are reported as the stream's last message."""
        try:
            self._run()
        except ImgapiError as e:
            self.progress.error(e.code, e.message)
        except DestinationError as e:
            self.progress.error(e.error.code, e.error.message)
        except Exception:
            log.exception("docker import of %s failed", self._named())
            self.progress.error("InternalError", "internal error")

    def _run(self) -> None:
        cfg = self.dest.call("GetServerConfig", catalog_pb2.GetServerConfigRequest())
        self.mode = cfg.mode
        self.owner = cfg.admin_uuid if cfg.mode == "dc" and cfg.admin_uuid else ZERO_UUID
        self.registry.login()
        manifest_text, manifest_digest, manifest = self._manifest()
        if self.registry.credentials is not None:
            # as the reference: whether the image is public is asked and not used, but a registry
            # failing to answer stops the import
            self.registry.is_public(manifest_digest)
        ref = self.req.reference
        self.progress.status(f"{ref.ref}: Pulling from {self.repo.local_name} (req {self.req.request_id})")
        config, config_digest, layers = self._layers(manifest)
        for layer in layers:
            self.progress.layer_queued(layer.short)
        pulled = self._pull_all(layers)
        if self.schema1 is not None:
            config, config_digest, manifest_text, manifest_digest = self._converted(pulled)
        downloaded = any(not p.reused for p in pulled)
        self._commit(pulled)
        self.progress.created(
            {
                "config_digest": config_digest,
                "head": True,
                "image": config,
                "image_uuid": layers[-1].uuid,
                "manifest_digest": manifest_digest,
                "manifest_str": manifest_text.decode(),
                "size": sum(p.size for p in pulled),
                "dockerImageVersion": "2.1" if self.schema1 is not None else "2.2",
            }
        )
        self.progress.status(f"Digest: {manifest_digest}")
        name = f"{self.repo.local_name}@{ref.digest}" if ref.digest else f"{self.repo.local_name}:{ref.tag}"
        what = "Downloaded newer image" if downloaded else "Image is up to date"
        self.progress.status(f"Status: {what} for {name}")

    def _new_manifest(self, layer: Layer) -> dict[str, Any]:
        public = self.req.public
        if (self.mode == "public" and not public) or (self.mode == "private" and public):
            raise ImgapiError("ValidationFailed", "invalid image data: public")
        return layer_manifest(layer, owner=self.owner, public=public, local_name=self.repo.local_name)

    def _pull_all(self, layers: list[Layer]) -> list[Pulled]:
        puller = LayerPuller(self.registry, self.dest, self.progress, self._new_manifest, stored=self.stored)
        futures: list[Future[Pulled]] = []
        with ThreadPoolExecutor(PARALLEL_LAYERS, thread_name_prefix="docker-layer") as pool:
            futures = [pool.submit(puller.pull, layer) for layer in layers]
            wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f.done() and f.exception() is not None), None)
            if failed is not None:
                puller.cancelled.set()
                for f in futures:
                    f.cancel()
        puller.forget()
        if failed is None:
            return [f.result() for f in futures]
        for f in futures:  # nothing is kept of a failed import
            if f.done() and not f.cancelled() and f.exception() is None:
                puller.discard(f.result().blob)
        errors = [f.exception() for f in futures if f.done() and not f.cancelled()]
        first = next(
            (e for e in errors if e is not None and not isinstance(e, Cancelled)), failed.exception()
        )
        assert first is not None
        raise first

    def _commit(self, pulled: list[Pulled]) -> None:
        puller = LayerPuller(self.registry, self.dest, self.progress, self._new_manifest)
        pending = [p for p in pulled if not p.reused]
        try:
            while pending:
                p = pending[0]
                with _uuid_lock(p.layer.uuid):
                    self._commit_one(p, puller.discard)
                pending.pop(0)
        finally:
            for p in pending:
                puller.discard(p.blob)

    def _commit_one(self, p: Pulled, discard: Callable[[Any], None]) -> None:
        uuid = p.layer.uuid
        image = self.dest.get(uuid)
        if image is not None and image.state in ("active", "disabled"):
            discard(p.blob)  # a concurrent import completed it
            return
        if image is None:
            manifest = p.manifest if p.manifest is not None else self._new_manifest(p.layer)
            try:
                image = self.dest.call(
                    "AdminImportImage",
                    catalog_pb2.AdminImportImageRequest(
                        caller=self.dest.write_caller,
                        view=VIEW,
                        uuid=uuid,
                        manifest_json=json.dumps(manifest),
                        skip_owner_check=True,
                        from_source=True,
                    ),
                ).image
            except DestinationError as e:
                if e.code != "ImageUuidAlreadyExists":
                    raise
                image = self.dest.get(uuid)
        assert p.blob is not None and image is not None
        if image.files:
            discard(p.blob)
        else:
            blob = p.blob
            f = image_pb2.ImageFile(
                sha1=blob.sha1,
                size=blob.size,
                compression=p.compression,
                content_md5=blob.content_md5,
                blob_id=blob.blob_id,
                digest=p.layer.digest,
                uncompressed_digest=p.layer.uncompressed_digest
                if p.compression != "none"
                else p.layer.digest,
            )
            self.dest.call(
                "AttachImageFile",
                catalog_pb2.AttachImageFileRequest(
                    caller=self.dest.write_caller, view=VIEW, uuid=uuid, file=f
                ),
            )
        self.progress.layer(p.layer.short, "Activating image")
        try:
            self.dest.call(
                "ActivateImage",
                catalog_pb2.ImageActionRequest(caller=self.dest.write_caller, view=VIEW, uuid=uuid),
            )
        except DestinationError as e:
            if e.code != "ImageAlreadyActivated":
                raise
        self.progress.layer(p.layer.short, "Pull complete")
