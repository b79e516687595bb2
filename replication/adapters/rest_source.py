"""Any IMGAPI-compatible server as a source over REST: ListImages paged with uuid markers,
GetImage, GetImageFile and GetImageIcon, through a :class:`RestTransport` (by default ``httpx``
behind the SSRF guard)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from imgapi_common import ssrf
from imgapi_common.ssrf import Allowlist
from replication.adapters.sources import FileRef, IconRef, SourceError, SourceImage

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
