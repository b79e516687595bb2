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

from blob_client import BlobError, BlobInfo
from imgapi_common.errors import ImgapiError
from replication.adapters.destination import Destination
from replication.adapters.docker.registry import Registry
from replication.domain.docker.layers import Layer, compression_of_media_type, sniff_compression
from replication.domain.docker.progress import DOWNLOADING_EVERY, Progress

log = logging.getLogger(__name__)

MAX_LAYER_BYTES = 20 * 1024 * 1024 * 1024
ATTEMPTS = 5


def _storage_error(e: BlobError) -> ImgapiError:
    code = "StorageIsDown" if e.reason == "StorageIsDown" else "InternalError"
    return ImgapiError(code, f"{e.reason}: {e.message}")


@dataclass(frozen=True)
class Partial:
    """A layer's upload that a broken transfer left: ``offset`` bytes are in it."""

    upload_id: str
    offset: int
    head: bytes


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
        stored: Callable[[str, str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.dest = dest
        self.progress = progress
        self.new_manifest = new_manifest
        self.retry_delay = retry_delay
        #: Told (layer uuid, blob id) of every blob committed, before anything else happens to it.
        self.stored = stored
        self.cancelled = threading.Event()
        #: layer uuid -> the upload a broken transfer left (one thread per layer touches its entry)
        self._partial: dict[str, Partial] = {}

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
            self._abort(self._partial.pop(layer.uuid, None))
            self.progress.layer(layer.short, "Already exists")
            size = found.files[0].size if found.files else 0
            return Pulled(layer, found, None, None, found.files[0].compression if found.files else "", size)
        manifest = None if found is not None else self.new_manifest(layer)
        partial = self._partial.pop(layer.uuid, None)
        ranged = {"Range": f"bytes={partial.offset}-"} if partial is not None else {}
        with self.registry.open_blob(layer.digest, ranged) as r:
            if partial is not None and r.status_code != 206:  # the registry sends it all again
                self._abort(partial)
                partial = None
            length = r.headers.get("content-length")
            total = int(length) if length and length.isdigit() else -1
            if partial is not None and total >= 0:
                total += partial.offset
            if total > MAX_LAYER_BYTES:
                self._abort(partial)
                raise too_big(total)
            header = r.headers.get("docker-content-digest")
            if header and header != layer.digest:
                self._abort(partial)
                raise ImgapiError(
                    "ValidationFailed",
                    f"Docker-Content-Digest header, {header}, does not match given digest, {layer.digest}",
                )
            self.progress.layer(layer.short, "Pulling fs layer")
            blob, head = self._store(layer, r, total, partial)
        self._tell_stored(layer, blob)
        try:
            self._verify(layer, blob, "sha256:" + blob.sha256, total)
        except ImgapiError:
            self.discard(blob)
            raise
        compression = compression_of_media_type(layer.media_type) or sniff_compression(head)
        self.progress.layer(layer.short, "Download complete")
        return Pulled(layer, found, manifest, blob, compression, blob.size)

    def _tell_stored(self, layer: Layer, blob: BlobInfo) -> None:
        if self.stored is None:
            return
        try:
            self.stored(layer.uuid, blob.blob_id)
        except Exception:  # only a crash before the layer's commit would leave the blob unknown
            log.exception("docker import: blob %s of layer %s not recorded", blob.blob_id, layer.uuid)

    def _store(
        self, layer: Layer, r: httpx.Response, total: int, partial: Partial | None
    ) -> tuple[BlobInfo, bytes]:
        """The response's bytes into the layer's upload (a new one, or the one a broken transfer
        left, continued where it stopped); a transfer that breaks keeps its upload for the next
        attempt."""
        blobs = self.dest.blobs
        try:
            if partial is None:
                upload = blobs.start_upload(label=f"docker:{layer.uuid}").upload_id
                partial = Partial(upload, 0, b"")
        except BlobError as e:
            raise _storage_error(e) from None
        head = bytearray(partial.head)
        start = int(time.time())
        counted = [partial.offset, partial.offset]  # bytes so far, at the last Downloading message

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
            blobs.write(partial.upload_id, partial.offset, chunks())
            return blobs.commit(partial.upload_id), bytes(head)
        except httpx.HTTPError as e:
            self._keep(layer, partial, bytes(head))
            if isinstance(e, httpx.TimeoutException):
                self.progress.layer(layer.short, "Connection timed out")
                raise ImgapiError("Download", "Download error: Connection timed out") from None
            raise ImgapiError("Download", f"Download error: {e}") from None
        except BlobError as e:
            self._abort(partial)
            raise _storage_error(e) from None
        except BaseException:
            self._abort(partial)
            raise

    def _keep(self, layer: Layer, partial: Partial, head: bytes) -> None:
        """Remember how far the upload got, for the next attempt to continue (Range)."""
        try:
            offset = self.dest.blobs.get_upload(partial.upload_id).committed_offset
        except BlobError:
            self._abort(partial)
            return
        self._partial[layer.uuid] = Partial(partial.upload_id, offset, head[: min(6, offset)])

    def _abort(self, partial: Partial | None) -> None:
        if partial is not None:
            try:
                self.dest.blobs.abort(partial.upload_id)
            except BlobError as e:
                log.warning("docker import: upload %s left behind: %s", partial.upload_id, e)

    def forget(self) -> None:
        """Abort the uploads broken transfers left (the import is over)."""
        while self._partial:
            self._abort(self._partial.popitem()[1])

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
