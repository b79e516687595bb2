"""Where images come from: another imgapi over gRPC (change feed + ranged blob reads) or any
IMGAPI-compatible server over REST (ListImages with markers + GetImageFile, polled).

Both give :class:`SourceImage` values: the image's REST view (what an AdminImportImage body is made
of) plus what is needed to fetch its file and icon.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import httpx
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, image_pb2
from pydantic import SecretStr

from blob_client import BlobClient, BlobError
from imgapi_common import internal_auth, ssrf
from imgapi_common.grpc_errors import from_rpc_error
from imgapi_common.ssrf import Allowlist

#: gRPC channel options: detect a dead peer (a dropped link) within seconds.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


class SourceError(Exception):
    """The source failed (network, HTTP error, truncated stream). ``transient`` (the default) says a
    retry may succeed; a refused URL, a missing file or an oversized one is not retried."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class FileRef:
    sha1: str
    size: int
    compression: str
    content_md5: str = ""  # base64; "" when unknown (REST listings)
    dataset_guid: str | None = None
    blob_id: str = ""  # gRPC sources


@dataclass(frozen=True)
class IconRef:
    sha1: str = ""  # "" when unknown (REST listings say only "icon": true)
    size: int = 0
    content_type: str = ""
    blob_id: str = ""


@dataclass(frozen=True)
class SourceImage:
    uuid: str
    manifest: dict[str, Any]  # the REST image object (v2 view)
    file: FileRef | None
    icon: IconRef | None

    @property
    def activated(self) -> bool:
        return self.manifest.get("state") in ("active", "disabled")

    @property
    def owner(self) -> str:
        return str(self.manifest.get("owner", ""))

    @property
    def origin(self) -> str | None:
        o = self.manifest.get("origin")
        return o if isinstance(o, str) and o else None

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class SourceEvent:
    cursor: int
    head: int
    uuid: str
    kind: str
    image: SourceImage | None  # None for deletes


class Source(Protocol):
    def get(self, uuid: str) -> SourceImage | None: ...

    def read_file(self, img: SourceImage, offset: int) -> Iterator[bytes]: ...

    def read_icon(self, img: SourceImage) -> tuple[bytes, str]: ...

    def close(self) -> None: ...


def md5_hex(content_md5_b64: str) -> str | None:
    if not content_md5_b64:
        return None
    try:
        return base64.b64decode(content_md5_b64).hex()
    except ValueError:
        return None


# --- gRPC ----------------------------------------------------------------------------------------------

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


# --- REST ----------------------------------------------------------------------------------------------

PAGE = 1000


def image_from_rest(obj: dict[str, Any]) -> SourceImage:
    files = obj.get("files")
    f = files[0] if isinstance(files, list) and files and isinstance(files[0], dict) else None
    file = (
        FileRef(
            sha1=str(f.get("sha1", "")),
            size=int(f.get("size", 0)),
            compression=str(f.get("compression", "none")),
            dataset_guid=f.get("dataset_guid") if isinstance(f.get("dataset_guid"), str) else None,
        )
        if f is not None
        else None
    )
    icon = IconRef() if obj.get("icon") else None
    return SourceImage(str(obj.get("uuid", "")), obj, file, icon)


@dataclass(frozen=True)
class HttpReply:
    """A whole (small) HTTP response of a :class:`RestTransport`."""

    status_code: int
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except ValueError as e:
            raise SourceError(f"invalid JSON from the source: {e}") from None


class RestTransport(Protocol):
    """How a :class:`RestSource` does its GETs. ``path`` is relative to the source's base URL
    (``/images/<uuid>``). Failures before a response raise :class:`SourceError`; ``stream`` yields
    the status and the body's chunks (which may raise :class:`SourceError`)."""

    def get(self, path: str, params: Mapping[str, str] | None = None) -> HttpReply: ...

    def stream(self, path: str) -> AbstractContextManager[tuple[int, Iterator[bytes]]]: ...

    def close(self) -> None: ...


class HttpxTransport:
    """The default transport: ``httpx`` through the SSRF guard (:mod:`imgapi_common.ssrf`).

    Every request is checked and pinned to the address that was checked: the source's host must
    resolve to public addresses only, unless the operator allow-listed it
    (``IMGAPI_REPLICATION_SOURCE_ALLOWLIST``). Redirects are not followed."""

    def __init__(self, base_url: str, allowlist: Allowlist, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.allowlist = allowlist
        self.http = httpx.Client(
            timeout=timeout, headers={"Accept-Version": "~2"}, follow_redirects=False, trust_env=False
        )

    def close(self) -> None:
        self.http.close()

    def _request(self, path: str, params: Mapping[str, str] | None) -> httpx.Request:
        try:
            url = httpx.URL(self.base_url + path, params=dict(params) if params else None)
            target = ssrf.check_url(url, self.allowlist)
        except ssrf.FetchBlocked as e:
            raise SourceError(
                f"GET {path}: refused by the SSRF guard: {e.message}", transient=False
            ) from None
        except (ssrf.FetchError, httpx.InvalidURL, ValueError) as e:
            raise SourceError(f"GET {path}: {e}") from None
        ext = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
        return self.http.build_request(
            "GET", target.connect_url, headers={"Host": target.host_header}, extensions=ext
        )

    def get(self, path: str, params: Mapping[str, str] | None = None) -> HttpReply:
        request = self._request(path, params)
        try:
            r = self.http.send(request)
        except httpx.HTTPError as e:
            raise SourceError(f"GET {path}: {e}") from None
        return HttpReply(r.status_code, r.content, r.headers)

    @contextmanager
    def stream(self, path: str) -> Iterator[tuple[int, Iterator[bytes]]]:
        def chunks(r: httpx.Response) -> Iterator[bytes]:
            try:
                yield from r.iter_bytes(1024 * 1024)
            except httpx.HTTPError as e:
                raise SourceError(f"GET {path}: {e}") from None

        request = self._request(path, None)
        try:
            r = self.http.send(request, stream=True)
        except httpx.HTTPError as e:
            raise SourceError(f"GET {path}: {e}") from None
        try:
            yield r.status_code, chunks(r)
        finally:
            r.close()


class RestSource:
    """Any IMGAPI server (this gateway, the original IMGAPI, a public image server).

    The default transport fetches through the SSRF guard with ``allowlist`` (empty: public
    addresses only). ``transport`` replaces it: the gateway passes one that fetches through its
    SSRF-safe fetcher and operator allow-list (AdminImportRemoteImage).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        page: int = PAGE,
        transport: RestTransport | None = None,
        allowlist: Allowlist | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.page = page
        self.transport: RestTransport = transport or HttpxTransport(
            self.base_url, allowlist or Allowlist(), timeout
        )

    def close(self) -> None:
        self.transport.close()

    def _get(self, path: str, params: dict[str, str] | None = None) -> HttpReply:
        r = self.transport.get(path, params)
        if r.status_code >= 500:
            raise SourceError(f"GET {path}: HTTP {r.status_code}")
        return r

    def list_all(self, params: dict[str, str] | None = None) -> Iterator[SourceImage]:
        """Every image (state=all), paginated with inclusive uuid markers."""
        marker = ""
        while True:
            q = {"state": "all", "limit": str(self.page), **(params or {})}
            if marker:
                q["marker"] = marker
            r = self._get("/images", q)
            if r.status_code != 200:
                raise SourceError(f"ListImages: HTTP {r.status_code}: {r.text[:200]}")
            page = r.json()
            if not isinstance(page, list):
                raise SourceError("ListImages: not an array")
            full = len(page) >= self.page
            if marker and page and page[0].get("uuid") == marker:
                page = page[1:]
            for obj in page:
                yield image_from_rest(obj)
            if not full or not page:
                return
            marker = str(page[-1]["uuid"])

    def get(self, uuid: str) -> SourceImage | None:
        r = self._get(f"/images/{uuid}")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise SourceError(f"GetImage {uuid}: HTTP {r.status_code}")
        obj = r.json()
        if not isinstance(obj, dict):
            raise SourceError(f"GetImage {uuid}: not an object")
        return image_from_rest(obj)

    def read_file(self, img: SourceImage, offset: int) -> Iterator[bytes]:
        """GetImageFile has no Range support: the bytes before ``offset`` are read and dropped
        (they are not sent to the local blob service again)."""
        skip = offset
        with self.transport.stream(f"/images/{img.uuid}/file") as (status, chunks):
            if status != 200:
                # 5xx / 429: the source may recover; any other answer will not change by retrying.
                raise SourceError(
                    f"GetImageFile {img.uuid}: HTTP {status}", transient=status >= 500 or status == 429
                )
            for chunk in chunks:
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk = chunk[skip:]
                    skip = 0
                yield chunk

    def read_icon(self, img: SourceImage) -> tuple[bytes, str]:
        r = self._get(f"/images/{img.uuid}/icon")
        if r.status_code != 200:
            raise SourceError(f"GetImageIcon {img.uuid}: HTTP {r.status_code}")
        return r.content, r.headers.get("content-type", "image/png")
