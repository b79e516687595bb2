"""Another imgapi as a source: its catalog (GetImage, the WatchChanges change feed) and its blob
service (ranged ReadBlob)."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, image_pb2
from pydantic import SecretStr

from blob_client import BlobClient, BlobError
from imgapi_common import internal_auth
from imgapi_common.grpc_errors import from_rpc_error
from replication.adapters.sources import (
    CHANNEL_OPTIONS,
    FileRef,
    IconRef,
    SourceError,
    SourceEvent,
    SourceImage,
)

OPERATOR = common_pb2.CallerContext(channel="*")
FULL_VIEW = common_pb2.ImageView(include_channels=True, include_admin_fields=True)


def image_from_message(m: image_pb2.Image) -> SourceImage:
    manifest = json.loads(m.view_json) if m.view_json else {}
    f = m.files[0] if m.files else None
    file = (
        FileRef(
            sha1=f.sha1,
            size=f.size,
            compression=f.compression,
            content_md5=f.content_md5,
            dataset_guid=f.dataset_guid if f.HasField("dataset_guid") else None,
            blob_id=f.blob_id,
        )
        if f is not None
        else None
    )
    icon = (
        IconRef(sha1=m.icon.sha1, size=m.icon.size, content_type=m.icon.content_type, blob_id=m.icon.blob_id)
        if m.HasField("icon")
        else None
    )
    return SourceImage(m.uuid, manifest, file, icon)


class GrpcSource:
    """Another imgapi: its catalog (WatchChanges, GetImage) and blob service (ReadBlob)."""

    def __init__(
        self, catalog_target: str, blob_target: str, *, timeout: float = 30.0, token: SecretStr | str = ""
    ) -> None:
        self._catalog_ch = internal_auth.channel(catalog_target, token, CHANNEL_OPTIONS)
        self._blob_ch = internal_auth.channel(blob_target, token, CHANNEL_OPTIONS)
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self._catalog_ch)
        self.blobs = BlobClient(self._blob_ch, retries=3, retry_delay=0.2)
        self.timeout = timeout

    def close(self) -> None:
        self._catalog_ch.close()
        self._blob_ch.close()

    def get(self, uuid: str) -> SourceImage | None:
        req = catalog_pb2.GetImageRequest(caller=OPERATOR, view=FULL_VIEW, uuid=uuid)
        try:
            resp = self.catalog.GetImage(req, timeout=self.timeout)
        except grpc.RpcError as e:
            err = from_rpc_error(e)
            if err.code == "ResourceNotFound":
                return None
            raise SourceError(f"GetImage {uuid}: {err.code}: {err.message}") from None
        return image_from_message(resp.image)

    def watch(self, after_cursor: int) -> ChangeStream:
        return ChangeStream(self.catalog, after_cursor)

    def read_file(self, img: SourceImage, offset: int) -> Iterator[bytes]:
        if img.file is None or not img.file.blob_id:
            raise SourceError(f"image {img.uuid} has no file")
        if offset >= img.file.size:
            return iter(())
        return self._read(img.file.blob_id, offset)

    def _read(self, blob_id: str, offset: int) -> Iterator[bytes]:
        try:
            yield from self.blobs.read(blob_id, offset)
        except BlobError as e:
            raise SourceError(f"ReadBlob {blob_id}: {e.reason}: {e.message}") from None

    def read_icon(self, img: SourceImage) -> tuple[bytes, str]:
        if img.icon is None:
            raise SourceError(f"image {img.uuid} has no icon")
        return b"".join(self._read(img.icon.blob_id, 0)), img.icon.content_type


class ChangeStream:
    """One WatchChanges call read by a thread into a queue (so the consumer can batch and time out).

    ``get`` returns the next event, None on timeout, and raises :class:`SourceError` once the stream
    broke; the consumer then opens a new stream from its persisted cursor.
    """

    _END = object()

    def __init__(self, stub: catalog_pb2_grpc.CatalogServiceStub, after_cursor: int) -> None:
        self._call = stub.WatchChanges(catalog_pb2.WatchChangesRequest(after_cursor=after_cursor))
        self._q: queue.Queue[Any] = queue.Queue(maxsize=2000)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._read, name="watch-changes", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for ev in self._call:
                img = image_from_message(ev.image) if ev.HasField("image") else None
                e = SourceEvent(ev.cursor, max(ev.head_cursor, ev.cursor), ev.image_uuid, ev.kind, img)
                while not self._closed:
                    try:
                        self._q.put(e, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if self._closed:
                    return
        except grpc.RpcError as e:
            if not self._closed:
                err = from_rpc_error(e)
                self._error = SourceError(f"change feed: {err.code}: {err.message}")
        except Exception as e:  # pragma: no cover - defensive
            self._error = SourceError(f"change feed: {e}")
        self._q.put(self._END)

    def get(self, timeout: float) -> SourceEvent | None:
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._END:
            self._q.put(self._END)
            raise self._error or SourceError("change feed ended")
        ev: SourceEvent = item
        return ev

    def get_nowait(self) -> SourceEvent | None:
        return self.get(0) if not self._q.empty() else None

    def close(self) -> None:
        self._closed = True
        self._call.cancel()  # type: ignore[no-untyped-call]
