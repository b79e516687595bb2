"""Downloading one layer into the blob service: lookup of its image, the blob request, the checks
(size, digest), progress, retries of ``Download`` failures, cancellation."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from imgapi.v1 import image_pb2

from blob_service.client import BlobInfo
from blob_service.errors import BlobError
from imgapi_common.errors import ImgapiError
from replication.copier import Destination
from replication.docker.layers import Layer, compression_of_media_type, sniff_compression
from replication.docker.progress import DOWNLOADING_EVERY, Progress
from replication.docker.registry import Registry

log = logging.getLogger(__name__)

MAX_LAYER_BYTES = 20 * 1024 * 1024 * 1024
ATTEMPTS = 5


class Cancelled(Exception):
    """Another layer failed: this one stops."""


@dataclass
class Pulled:
    layer: Layer
    #: The image found before downloading (unactivated ones are completed), None when new.
    found: image_pb2.Image | None
    #: The manifest of a new layer image (None when found).
    manifest: dict[str, Any] | None
    #: The downloaded blob; None when the layer's image already exists active or disabled.
    blob: BlobInfo | None
    compression: str
    size: int

    @property
    def reused(self) -> bool:
        return self.blob is None


def too_big(n: int) -> ImgapiError:
    return ImgapiError(
        "ImageFileTooBig", f"Image file size, {n}, exceeds the maximum allowed file size, 20 GiB"
    )


class LayerPuller:
    """Pulls the layers of one import; ``new_manifest`` builds (and checks) a new layer's manifest."""

    def __init__(
        self,
        registry: Registry,
        dest: Destination,
        progress: Progress,
        new_manifest: Callable[[Layer], dict[str, Any]],
        *,
        retry_delay: float = 1.0,
    ) -> None:
        self.registry = registry
        self.dest = dest
        self.progress = progress
        self.new_manifest = new_manifest
        self.retry_delay = retry_delay
        self.cancelled = threading.Event()

    def pull(self, layer: Layer) -> Pulled:
        for attempt in range(1, ATTEMPTS + 1):
            if self.cancelled.is_set():
                raise Cancelled()
            try:
                return self._attempt(layer)
            except ImgapiError as e:
                if e.code != "Download" or attempt == ATTEMPTS:
                    raise
            if self.cancelled.wait(self.retry_delay):
                raise Cancelled()
        raise AssertionError("unreachable")

    def _attempt(self, layer: Layer) -> Pulled:
        found = self.dest.get(layer.uuid)
        if found is not None and found.state in ("active", "disabled"):
            self.progress.layer(layer.short, "Already exists")
            size = found.files[0].size if found.files else 0
            return Pulled(layer, found, None, None, found.files[0].compression if found.files else "", size)
        manifest = None if found is not None else self.new_manifest(layer)
        with self.registry.open_blob(layer.digest) as r:
            length = r.headers.get("content-length")
            total = int(length) if length and length.isdigit() else -1
            if total > MAX_LAYER_BYTES:
                raise too_big(total)
            header = r.headers.get("docker-content-digest")
            if header and header != layer.digest:
                raise ImgapiError(
                    "ValidationFailed",
                    f"Docker-Content-Digest header, {header}, does not match given digest, {layer.digest}",
                )
            self.progress.layer(layer.short, "Pulling fs layer")
            blob, sha256, head = self._store(layer, r, total)
        try:
            self._verify(layer, blob, sha256, total)
        except ImgapiError:
            self.discard(blob)
            raise
        compression = compression_of_media_type(layer.media_type) or sniff_compression(head)
        self.progress.layer(layer.short, "Download complete")
        return Pulled(layer, found, manifest, blob, compression, blob.size)

    def _store(self, layer: Layer, r: httpx.Response, total: int) -> tuple[BlobInfo, str, bytes]:
        head = bytearray()
        start = int(time.time())
        counted = [0, 0]  # bytes so far, at the last Downloading message

        def chunks() -> Iterator[bytes]:
            for piece in r.iter_raw():
                if self.cancelled.is_set():
                    self.progress.layer(layer.short, "Aborted")
                    raise Cancelled()
                if len(head) < 6:
                    head.extend(piece[: 6 - len(head)])
                counted[0] += len(piece)
                if counted[0] > MAX_LAYER_BYTES:
                    raise ImgapiError("Download", f"Download error: more than {MAX_LAYER_BYTES} bytes")
                if counted[0] - counted[1] > DOWNLOADING_EVERY:
                    counted[1] = counted[0]
                    self.progress.downloading(layer.short, counted[0], total, start)
                yield piece

        try:
            blob = self.dest.blobs.upload(chunks(), label=f"docker:{layer.uuid}")
        except httpx.TimeoutException:
            self.progress.layer(layer.short, "Connection timed out")
            raise ImgapiError("Download", "Download error: Connection timed out") from None
        except httpx.HTTPError as e:
            raise ImgapiError("Download", f"Download error: {e}") from None
        except BlobError as e:
            code = "StorageIsDown" if e.reason == "StorageIsDown" else "InternalError"
            raise ImgapiError(code, f"{e.reason}: {e.message}") from None
        return blob, "sha256:" + blob.sha256, bytes(head)

    def _verify(self, layer: Layer, blob: BlobInfo, sha256: str, total: int) -> None:
        if total >= 0 and blob.size != total:
            raise ImgapiError(
                "Download",
                f'Download error: "Content-Length" header, {total}, does not match downloaded size, {blob.size}',
            )
        if sha256 != layer.digest:
            raise ImgapiError(
                "Download", f"layer digest does not match, got {sha256}, expected {layer.digest}"
            )

    def discard(self, blob: BlobInfo | None) -> None:
        """Delete a downloaded blob that no image will hold."""
        if blob is None:
            return
        try:
            self.dest.blobs.delete(blob.blob_id)
        except BlobError as e:
            log.warning("docker import: blob %s of a failed layer left behind: %s", blob.blob_id, e)
