"""A thin, typed REST client of IMGAPI over httpx.

It speaks the REST API of Joyent's IMGAPI the way the node ``sdc-clients`` client does
(``Accept-Version: *``, JSON bodies with ``Content-MD5`` on every JSON write, ``{}`` for body-less
actions, ``listImages`` pagination with an inclusive marker), so it works against this project's
gateway and against the original server. Transfers (resumable uploads, ranged downloads) live in
:mod:`imgapi_cli.uploads` / :mod:`imgapi_cli.downloads` and use :meth:`Client.request` / :meth:`Client.stream` directly.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from imgapi_cli import __version__

Image = dict[str, Any]
Params = Mapping[str, str | list[str] | None]

#: The node client's page size when it follows markers.
PAGE_SIZE = 1000

USER_AGENT = f"imgapi-cli/{__version__}"


class CliError(Exception):
    """What a CLI command reports: an error answered by the server (``{"code", "message"[, "errors"]}``),
    a transport failure, or a local one (bad usage, a missing file). Distinct from the services'
    ``imgapi_common.errors.ImgapiError``: this one is built from REST answers, on the client side."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.status is not None:
            out["statusCode"] = self.status
        if self.errors:
            out["errors"] = self.errors
        return out

    @classmethod
    def from_response(cls, r: httpx.Response) -> CliError:
        """IMGAPI error bodies carry ``code``/``message``; anything else becomes ``HttpError``."""
        try:
            body = json.loads(r.read() or b"null")
        except (ValueError, httpx.HTTPError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            errors = body.get("errors")
            return cls(
                body["code"],
                str(body.get("message", "")),
                r.status_code,
                errors if isinstance(errors, list) else None,
            )
        reason = r.reason_phrase or "error"
        return cls("HttpError", f"HTTP {r.status_code} {reason}", r.status_code)


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _clean(params: Params | None) -> dict[str, str | list[str]]:
    return {k: v for k, v in (params or {}).items() if v is not None and v != ""}


def _bool(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


class Client:
    """One IMGAPI server. ``account``/``channel`` are added to every image request when set."""

    def __init__(
        self,
        url: str,
        *,
        account: str | None = None,
        channel: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        version: str = "*",
        auth: httpx.Auth | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.account = account or None
        self.channel = channel or None
        headers = {"User-Agent": USER_AGENT, "Accept-Version": version}
        self.http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
            follow_redirects=False,
            auth=auth,
        )

    # --- plumbing --------------------------------------------------------------------------------

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scope(self, params: Params | None = None, *, channel: bool = True) -> dict[str, str | list[str]]:
        """``params`` plus the client's ``account`` and ``channel`` (explicit values win)."""
        out: dict[str, str | list[str] | None] = {"account": self.account}
        if channel:
            out["channel"] = self.channel
        out.update(params or {})
        return _clean(out)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        ok: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send a request; statuses >= 400 (except those in ``ok``) raise :class:`CliError`."""
        hdrs = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
            hdrs["Content-MD5"] = content_md5(data)
            content = data
        hdrs.setdefault("Accept", "application/json")
        try:
            r = self.http.request(method, path, params=_clean(params), headers=hdrs, content=content)
        except httpx.TransportError as e:
            raise CliError("ConnectionError", f"{method} {self.url}{path}: {e or type(e).__name__}") from e
        if r.status_code >= 400 and r.status_code not in ok:
            raise CliError.from_response(r)
        return r

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """A streamed response; statuses >= 400 raise :class:`CliError` (416 is returned)."""
        try:
            with self.http.stream(method, path, params=_clean(params), headers=dict(headers or {})) as r:
                if r.status_code >= 400 and r.status_code != 416:
                    raise CliError.from_response(r)
                yield r
        except httpx.TransportError as e:
            raise CliError("ConnectionError", f"{method} {self.url}{path}: {e or type(e).__name__}") from e

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        r = self.request(method, path, **kw)
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            raise CliError("InvalidContent", f"{method} {path}: the server answered non-JSON") from None

    def _image(self, method: str, path: str, **kw: Any) -> Image:
        body = self._json(method, path, **kw)
        if not isinstance(body, dict):
            raise CliError("InvalidContent", f"{method} {path}: expected an image object")
        return body

    # --- images ----------------------------------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        body = self._json("GET", "/ping")
        return body if isinstance(body, dict) else {}

    def list_images(self, filters: Params | None = None, *, limit: int | None = None) -> Iterator[Image]:
        """ListImages. With ``limit``: one request. Without: the node client's marker loop (first page
        without limit, then ``limit=1000&marker=<last uuid>`` while pages are full; the marker is
        inclusive, so a page starting with it drops that image)."""
        base = self.scope(filters)
        if limit is not None:
            yield from self._page({**base, "limit": str(limit)})
            return
        marker: str | None = None
        while True:
            params = dict(base)
            if marker is not None:
                params.update(limit=str(PAGE_SIZE), marker=marker)
            page = self._page(params)
            full = len(page) >= PAGE_SIZE
            if marker is not None and page and page[0].get("uuid") == marker:
                page = page[1:]
            yield from page
            if not full or not page:
                return
            marker = str(page[-1]["uuid"])

    def _page(self, params: Params) -> list[Image]:
        body = self._json("GET", "/images", params=params)
        if not isinstance(body, list):
            raise CliError("InvalidContent", "GET /images: expected an array")
        return body

    def get_image(self, uuid: str, *, admin_fields: bool = False) -> Image:
        params = {"inclAdminFields": "true"} if admin_fields else None
        return self._image("GET", f"/images/{uuid}", params=self.scope(params))

    def create_image(self, manifest: Mapping[str, Any]) -> Image:
        return self._image("POST", "/images", params=self.scope(), json_body=dict(manifest))

    def action(
        self,
        uuid: str,
        action: str,
        body: Any = None,
        *,
        params: Params | None = None,
        if_match: str | None = None,
    ) -> Image:
        """``POST /images/:uuid?action=...`` (activate, disable, enable, update, channel-add...)."""
        headers = {"If-Match": if_match} if if_match else None
        return self._image(
            "POST",
            f"/images/{uuid}",
            params=self.scope({"action": action, **(params or {})}),
            json_body={} if body is None else body,
            headers=headers,
        )

    def activate(self, uuid: str) -> Image:
        return self.action(uuid, "activate")

    def disable(self, uuid: str) -> Image:
        return self.action(uuid, "disable")

    def enable(self, uuid: str) -> Image:
        return self.action(uuid, "enable")

    def update(self, uuid: str, changes: Mapping[str, Any], *, if_match: str | None = None) -> Image:
        return self.action(uuid, "update", dict(changes), if_match=if_match)

    def delete(self, uuid: str, *, force_all_channels: bool | None = None) -> None:
        params = {"force_all_channels": _bool(force_all_channels)}
        self.request("DELETE", f"/images/{uuid}", params=self.scope(params), content=b"")

    def acl(self, uuid: str, action: str, accounts: list[str]) -> Image:
        return self._image(
            "POST", f"/images/{uuid}/acl", params=self.scope({"action": action}), json_body=accounts
        )

    # --- icons -----------------------------------------------------------------------------------

    def put_icon(self, uuid: str, data: bytes, content_type: str) -> Image:
        sha1 = hashlib.sha1(data).hexdigest()
        return self._image(
            "PUT",
            f"/images/{uuid}/icon",
            params=self.scope({"sha1": sha1}),
            headers={"Content-Type": content_type},
            content=data,
        )

    def get_icon(self, uuid: str) -> tuple[bytes, str]:
        """The icon bytes (verified against the mandatory ``Content-MD5``) and content type."""
        r = self.request("GET", f"/images/{uuid}/icon", params=self.scope(), headers={"Accept": "*/*"})
        expected = r.headers.get("content-md5")
        if expected is None:
            raise CliError("ChecksumError", "the server sent no Content-MD5 header for the icon")
        if content_md5(r.content) != expected:
            raise CliError(
                "ChecksumError",
                f"icon MD5 {content_md5(r.content)} does not match Content-MD5 {expected}",
            )
        return r.content, r.headers.get("content-type", "application/octet-stream")

    def delete_icon(self, uuid: str) -> Image:
        return self._image("DELETE", f"/images/{uuid}/icon", params=self.scope())

    # --- imports and jobs ------------------------------------------------------------------------

    def import_remote(
        self, uuid: str, source: str, *, skip_owner_check: bool | None = None
    ) -> tuple[dict[str, Any], str]:
        """AdminImportRemoteImage: ``({"image_uuid", "job_uuid"}, workflow-api base URL)``."""
        params = {"action": "import-remote", "source": source, "skip_owner_check": _bool(skip_owner_check)}
        r = self.request("POST", f"/images/{uuid}", params=self.scope(params), json_body={})
        body = r.json()
        wfapi = r.headers.get("workflow-api")
        if not isinstance(body, dict) or "job_uuid" not in body:
            raise CliError("InvalidContent", "import-remote: the server answered no job_uuid")
        if not wfapi:
            raise CliError("InvalidContent", "import-remote: the server sent no workflow-api header")
        return body, wfapi

    def get_job(self, wfapi: str, job_uuid: str) -> dict[str, Any]:
        """``GET /jobs/:uuid`` at the root of the ``workflow-api`` host (its path is not used)."""
        parts = urlsplit(wfapi)
        root = f"{parts.scheme}://{parts.netloc}"
        url = f"{root}/jobs/{job_uuid}"
        try:
            r = self.http.get(url, headers={"Accept": "application/json"})
        except httpx.TransportError as e:
            raise CliError("ConnectionError", f"GET {url}: {e or type(e).__name__}") from e
        if r.status_code >= 400:
            raise CliError.from_response(r)
        body = r.json()
        if not isinstance(body, dict):
            raise CliError("InvalidContent", f"GET {url}: expected a job object")
        return body

    # --- channels --------------------------------------------------------------------------------

    def list_channels(self) -> list[dict[str, Any]]:
        body = self._json("GET", "/channels")
        if not isinstance(body, list):
            raise CliError("InvalidContent", "GET /channels: expected an array")
        return body

    def channel_add(self, uuid: str, channel: str) -> Image:
        return self.action(uuid, "channel-add", {"channel": channel})
