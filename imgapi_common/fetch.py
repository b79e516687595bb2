"""SSRF-safe asynchronous HTTP(S) fetching of caller-chosen URLs (remote imports, files from URLs).

Manifests and files are fetched from URLs chosen by callers, so every hop goes through the
shared SSRF guard (:mod:`imgapi_common.ssrf`: host forms, forbidden addresses, the operator
allow-list, pinning the connection to the checked address). Here, in addition:

* DNS names are resolved asynchronously, once per hop;
* redirects are followed manually (when wanted at all) and each target is checked again;
* sizes are bounded while streaming, and connect/read/total timeouts apply.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from imgapi_common.ssrf import (
    Allowlist,
    FetchBlocked,
    FetchError,
    FetchTooLarge,
    IPAddress,
    IPNetwork,
    Target,
    addresses_of,
    check_url_async,
    embedded_ipv4,
    forbidden_reason,
    parse_host,
    parse_ipv4_loose,
)

__all__ = [
    "Allowlist",
    "FetchBlocked",
    "FetchError",
    "FetchPolicy",
    "FetchResponse",
    "FetchTooLarge",
    "IPAddress",
    "IPNetwork",
    "SafeFetcher",
    "Target",
    "check_url",
    "embedded_ipv4",
    "forbidden_reason",
    "parse_host",
    "parse_ipv4_loose",
    "system_resolver",
]

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchPolicy:
    allowlist: Allowlist = field(default_factory=Allowlist)
    #: Skip TLS certificate verification (IMGAPI's ``allowInsecure``).
    allow_insecure: bool = False
    #: Refuse plain ``http:`` on every hop (AddImageFileFromUrl).
    https_only: bool = False
    max_redirects: int = 5
    connect_timeout: float = 10.0
    #: Longest silence between two reads of the response.
    read_timeout: float = 60.0
    #: Deadline for the whole exchange (headers and body), None = unbounded.
    total_timeout: float | None = None
    #: Largest accepted body, None = unbounded.
    max_size: int | None = None
    user_agent: str = "imgapi/4.11.0"


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise FetchError(f"getaddrinfo {host}: {e.strerror or e}") from e
    return addresses_of(host, infos)


async def check_url(url: httpx.URL, policy: FetchPolicy, resolver: Resolver = system_resolver) -> Target:
    """Validate one hop and pin it to a checked address. Raises :class:`FetchBlocked`."""
    return await check_url_async(url, policy.allowlist, resolver, https_only=policy.https_only)


# --- responses ----------------------------------------------------------------------------------


class FetchResponse:
    """A streamed response of the final hop."""

    def __init__(self, response: httpx.Response, url: httpx.URL, policy: FetchPolicy, deadline: float | None):
        self._r = response
        self.url = url
        self._policy = policy
        self._deadline = deadline

    @property
    def status_code(self) -> int:
        return self._r.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self._r.headers

    async def iter_bytes(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The body, re-chunked to ``chunk_size``; enforces max_size and the total deadline."""
        total = 0
        limit = self._policy.max_size
        buf = bytearray()
        try:
            async for piece in self._r.aiter_raw():
                total += len(piece)
                if limit is not None and total > limit:
                    raise FetchTooLarge(f"response exceeds {limit} bytes")
                if self._deadline is not None and time.monotonic() > self._deadline:
                    raise FetchError("timed out reading the response")
                buf += piece
                while len(buf) >= chunk_size:
                    yield bytes(buf[:chunk_size])
                    del buf[:chunk_size]
        except httpx.HTTPError as e:
            raise FetchError(_describe(e)) from e
        if buf:
            yield bytes(buf)

    async def read(self, limit: int | None = None) -> bytes:
        out = bytearray()
        async for chunk in self.iter_bytes():
            out += chunk
            if limit is not None and len(out) > limit:
                raise FetchTooLarge(f"response exceeds {limit} bytes")
        return bytes(out)

    async def json(self, limit: int = 16 << 20) -> Any:
        raw = await self.read(limit)
        try:
            return json.loads(raw)
        except ValueError as e:
            raise FetchError(f"invalid JSON in response: {e}") from e


def _describe(e: BaseException) -> str:
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class SafeFetcher:
    """Fetches URLs under a :class:`FetchPolicy`. One instance may serve many requests."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver

    def _client(self, timeout: httpx.Timeout) -> httpx.AsyncClient:
        verify: ssl.SSLContext | bool = not self.policy.allow_insecure
        return httpx.AsyncClient(verify=verify, timeout=timeout, follow_redirects=False, trust_env=False)

    @asynccontextmanager
    async def open(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> AsyncIterator[FetchResponse]:
        """GET ``url``; yields the final response (a 3xx when ``follow_redirects`` is False)."""
        p = self.policy
        deadline = time.monotonic() + p.total_timeout if p.total_timeout else None
        timeout = httpx.Timeout(connect=p.connect_timeout, read=p.read_timeout, write=p.read_timeout, pool=5)
        try:
            current = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError) as e:
            raise FetchBlocked(f"invalid URL: {e}") from e
        hops = 0
        while True:
            target = await check_url(current, p, self.resolver)
            # A client per hop: pooled connections must never be shared across host names.
            client = self._client(timeout)
            try:
                req_headers = {"User-Agent": p.user_agent, **(headers or {}), "Host": target.host_header}
                ext: dict[str, Any] = {}
                if target.sni_hostname:
                    ext["sni_hostname"] = target.sni_hostname
                request = client.build_request("GET", target.connect_url, headers=req_headers, extensions=ext)
                try:
                    if deadline is not None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise FetchError("timed out")
                        response = await asyncio.wait_for(client.send(request, stream=True), remaining)
                    else:
                        response = await client.send(request, stream=True)
                except TimeoutError as e:
                    raise FetchError("timed out waiting for the response") from e
                except httpx.HTTPError as e:
                    raise FetchError(_describe(e)) from e
                try:
                    location = response.headers.get("location")
                    if follow_redirects and response.status_code in _REDIRECT_STATUSES and location:
                        hops += 1
                        if hops > p.max_redirects:
                            raise FetchError(f"too many redirects (> {p.max_redirects})")
                        try:
                            current = current.join(location)
                        except (httpx.InvalidURL, ValueError) as e:
                            raise FetchBlocked(f"invalid redirect location {location!r}") from e
                        continue
                    length = response.headers.get("content-length")
                    if p.max_size is not None and length and length.isdigit() and int(length) > p.max_size:
                        raise FetchTooLarge(f"response of {length} bytes exceeds {p.max_size} bytes")
                    yield FetchResponse(response, current, p, deadline)
                    return
                finally:
                    await response.aclose()
            finally:
                await client.aclose()

    async def get_json(
        self, url: str, *, headers: Mapping[str, str] | None = None, limit: int = 16 << 20
    ) -> tuple[int, Any]:
        """GET a JSON document: (status, parsed body or None when it does not parse)."""
        async with self.open(url, headers={"Accept": "application/json", **(headers or {})}) as r:
            raw = await r.read(limit)
            try:
                return r.status_code, json.loads(raw) if raw else None
            except ValueError:
                return r.status_code, None
