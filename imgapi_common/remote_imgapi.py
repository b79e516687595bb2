"""Reading another IMGAPI server (manifests, files) through the SSRF-safe fetcher.

Used by the gateway's synchronous fetches (AdminImportImage and AddImageFile from a ``source``,
AddImageFile from a URL) and by the replication service's import jobs; both describe the remote's
failures in the same IMGAPI words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from imgapi_common.errors import ImgapiError
from imgapi_common.fetch import Allowlist, FetchError, FetchPolicy, SafeFetcher

#: Largest manifest (or error body) read from a remote.
MANIFEST_LIMIT = 4 << 20


class HasRemoteSettings(Protocol):
    """A settings object with the remote-fetch settings (the gateway's, the replication service's)."""

    @property
    def remote_allowlist(self) -> list[str]: ...
    @property
    def allow_insecure(self) -> bool: ...
    @property
    def remote_connect_timeout_seconds(self) -> float: ...
    @property
    def remote_timeout_seconds(self) -> float: ...
    @property
    def server_name(self) -> str: ...
    @property
    def max_file_size(self) -> int: ...


@dataclass(frozen=True)
class RemoteSettings:
    """How remote IMGAPIs are reached (the operator's settings, shared by every fetch)."""

    allowlist: list[str]
    #: Name of the setting the allow-list came from (named in its parse errors).
    allowlist_setting: str
    allow_insecure: bool
    connect_timeout: float
    total_timeout: float
    user_agent: str
    max_file_size: int

    @classmethod
    def of(cls, s: HasRemoteSettings) -> RemoteSettings:
        """From the settings, whose allow-list is ``IMGAPI_GATEWAY_REMOTE_ALLOWLIST`` in both services."""
        return cls(
            allowlist=s.remote_allowlist,
            allowlist_setting="IMGAPI_GATEWAY_REMOTE_ALLOWLIST",
            allow_insecure=s.allow_insecure,
            connect_timeout=s.remote_connect_timeout_seconds,
            total_timeout=s.remote_timeout_seconds,
            user_agent=s.server_name,
            max_file_size=s.max_file_size,
        )

    def policy(self, **overrides: Any) -> FetchPolicy:
        base = FetchPolicy(
            allowlist=Allowlist.parse(self.allowlist, self.allowlist_setting),
            allow_insecure=self.allow_insecure,
            connect_timeout=self.connect_timeout,
            read_timeout=max(self.connect_timeout, 60.0),
            total_timeout=self.total_timeout,
            user_agent=self.user_agent,
        )
        return replace(base, **overrides)


def source_url(source: str, path: str, extra: Mapping[str, str] | None = None) -> str:
    """``<source base>/<path>`` keeping the source's own query (``?channel=``) plus ``extra``."""
    parts = urlsplit(source)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += list((extra or {}).items())
    base = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/{path}", urlencode(query), ""))


@dataclass
class RemoteHttpError(Exception):
    """The remote answered with an HTTP error; ``body`` is its JSON error when it had one."""

    status: int
    body: Any

    @property
    def detail(self) -> str:
        if isinstance(self.body, dict):
            msg = self.body.get("message") or self.body.get("code")
            if msg:
                return str(msg)
        return f"HTTP {self.status}"


def json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


class Remote:
    """A remote IMGAPI at ``source``."""

    def __init__(self, settings: RemoteSettings, source: str) -> None:
        self.source = source
        self.fetcher = SafeFetcher(settings.policy())
        self.file_fetcher = SafeFetcher(settings.policy(max_size=settings.max_file_size + 1))

    async def manifest(self, uuid: str, account: str | None = None) -> dict[str, Any]:
        """GET /images/<uuid> (``Accept-Version: *``). Raises FetchError / RemoteHttpError."""
        url = source_url(self.source, f"images/{quote(uuid)}", {"account": account} if account else None)
        status, body = await self.fetcher.get_json(url, headers={"Accept-Version": "*"}, limit=MANIFEST_LIMIT)
        if status != 200:
            raise RemoteHttpError(status, body)
        if not isinstance(body, dict):
            raise FetchError("remote manifest is not a JSON object")
        return body


def remote_detail(e: Exception) -> str:
    if isinstance(e, RemoteHttpError):
        return e.detail
    if isinstance(e, FetchError):
        return e.message
    return str(e)


def remote_source_error(uuid: str, e: Exception, what: str = "image") -> ImgapiError:
    return ImgapiError(
        "RemoteSourceError",
        f"Unable to get manifest for {what} {uuid}. Error from remote: {remote_detail(e)}",
    )


async def fetch_manifest(remote: Remote, uuid: str, what: str = "image") -> dict[str, Any]:
    try:
        return await remote.manifest(uuid)
    except (FetchError, RemoteHttpError) as e:
        raise remote_source_error(uuid, e, what) from None
