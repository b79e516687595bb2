"""SSRF-safe HTTP(S) fetching for the import endpoints (endpoints.md §2.6-2.8, §2.10, §2.11).

The gateway fetches manifests and files from URLs chosen by callers, so every hop is checked:

* the host is parsed the way resolvers and browsers parse it (``inet_aton`` / WHATWG forms:
  ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``, bracketed IPv6 with zone ids), and DNS
  names are resolved **here**; the connection then goes to the checked address (the original name
  is kept for ``Host`` and TLS SNI / certificate verification), so a second lookup cannot rebind;
* every address is refused unless it is globally routable unicast: loopback, private, link-local,
  CGNAT, multicast, unspecified, reserved, documentation, cloud metadata addresses, and IPv6
  forms embedding such an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo);
* redirects are followed manually (when wanted at all) and each target is checked again;
* sizes are bounded while streaming, and connect/read/total timeouts apply.

An operator allow-list (host names, ``*.suffix`` patterns, IP addresses or CIDRs) exempts trusted
hosts, e.g. a sibling IMGAPI on a private network — or loopback test servers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

#: Cloud metadata services and other never-wanted targets that the generic rules miss.
_EXTRA_DENY: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # CGNAT (Alibaba metadata 100.100.100.200 lives here)
        "169.254.0.0/16",  # link-local (AWS/GCP/Azure/OpenStack metadata 169.254.169.254)
        "168.63.129.16/32",  # Azure wireserver (a public address)
        "192.0.0.0/24",  # IETF protocol assignments (Oracle metadata 192.0.0.192)
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved + broadcast
        "fd00:ec2::254/128",  # AWS IPv6 metadata (ULA anyway)
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "2001::/32",  # Teredo
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DENY_HOSTNAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """A fetch failed before a usable response: network, TLS, timeout, redirect loop, policy."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FetchBlocked(FetchError):
    """The target (or a redirect target) is not allowed by the SSRF policy."""


class FetchTooLarge(FetchError):
    """The response body exceeded the size limit."""


# --- host parsing -------------------------------------------------------------------------------

_NUMERIC_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


def _parse_ipv4_part(part: str) -> int | None:
    if not _NUMERIC_PART.match(part):
        return None
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if any(c in "89" for c in part):
            raise FetchBlocked(f"invalid IPv4 host {part!r}")
        return int(part, 8)
    return int(part, 10)


def parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """Parse every IPv4 spelling ``inet_aton``/WHATWG accept (``127.1``, ``0x7f000001``, ``017700000001``).

    Returns None when ``host`` is not numeric (a DNS name); raises :class:`FetchBlocked` for a
    numeric-looking host that is not a valid address (``1.2.3.4.5``, ``256.1.1.1``).
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]  # trailing dot
    values = [_parse_ipv4_part(p) for p in parts]
    if any(v is None for v in values):
        if parts and _NUMERIC_PART.match(parts[-1]):
            raise FetchBlocked(f"invalid host {host!r}")  # WHATWG: a numeric last label is an IPv4
        return None
    nums = [v for v in values if v is not None]
    if not 1 <= len(nums) <= 4:
        raise FetchBlocked(f"invalid IPv4 host {host!r}")
    *head, last = nums
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(nums)):
        raise FetchBlocked(f"invalid IPv4 host {host!r}")
    value = last
    for i, v in enumerate(head):
        value += v << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def parse_host(host: str) -> IPAddress | None:
    """The IP address a URL host denotes, or None for a DNS name."""
    h = host.strip("[]")
    if ":" in h:
        try:
            return ipaddress.IPv6Address(h.split("%", 1)[0])
        except ValueError as e:
            raise FetchBlocked(f"invalid IPv6 host {host!r}") from e
    return parse_ipv4_loose(h)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why connecting to ``ip`` is refused (None when it is a public unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        v4 = embedded_ipv4(ip)
        if v4 is not None:
            inner = forbidden_reason(v4)
            return f"embeds {v4}: {inner}" if inner else None
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address"
    if any(ip in net for net in _EXTRA_DENY if net.version == ip.version):
        return "special-purpose address"
    if not ip.is_global:
        return "non-global address"
    return None


# --- policy -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowlist:
    """Operator exemptions: host names (``*.example.com`` for a suffix), IP addresses, CIDRs."""

    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str] | str | None) -> Allowlist:
        if entries is None:
            return cls()
        if isinstance(entries, str):
            entries = [e for e in re.split(r"[,\s]+", entries) if e]
        hosts: set[str] = set()
        suffixes: list[str] = []
        nets: list[IPNetwork] = []
        for raw in entries:
            e = raw.strip().lower()
            if not e:
                continue
            try:
                nets.append(ipaddress.ip_network(e.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if e.startswith("*."):
                suffixes.append(e[1:])
            else:
                hosts.add(e.rstrip("."))
        return cls(frozenset(hosts), tuple(suffixes), tuple(nets))

    def allows_host(self, host: str) -> bool:
        h = host.lower().rstrip(".")
        return h in self.hosts or any(h.endswith(s) for s in self.suffixes)

    def allows_ip(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(c in n for c in candidates for n in self.networks if n.version == c.version)


@dataclass(frozen=True)
class FetchPolicy:
    allowlist: Allowlist = field(default_factory=Allowlist)
    #: The setting an operator edits to allow a refused host (named in the refusal).
    allowlist_setting: str = "IMGAPI_GATEWAY_REMOTE_ALLOWLIST"
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
    out: list[IPAddress] = []
    for family, _t, _p, _c, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if ip not in out:
                out.append(ip)
    if not out:
        raise FetchError(f"getaddrinfo {host}: no address")
    return out


@dataclass(frozen=True)
class Target:
    """A checked hop: the URL to request (host replaced by the checked IP) and how to present it."""

    url: httpx.URL
    connect_url: httpx.URL
    host_header: str
    sni_hostname: str | None


async def check_url(url: httpx.URL, policy: FetchPolicy, resolver: Resolver = system_resolver) -> Target:
    """Validate one hop and pin it to a checked address. Raises :class:`FetchBlocked`."""
    scheme = url.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchBlocked(f"unsupported URL scheme {url.scheme!r}")
    if policy.https_only and scheme != "https":
        raise FetchBlocked("Only URLs using the https: scheme are supported")
    if url.userinfo:
        raise FetchBlocked("URLs with credentials are not supported")
    host = url.host
    if not host:
        raise FetchBlocked("URL has no host")
    port = url.port or (443 if scheme == "https" else 80)
    literal = parse_host(host)
    host_allowed = policy.allowlist.allows_host(host)
    if literal is None and not host_allowed and host.lower().rstrip(".") in _DENY_HOSTNAMES:
        raise FetchBlocked(
            f"host {host!r} is not allowed (operators allow a host with {policy.allowlist_setting})"
        )
    ips = [literal] if literal is not None else await resolver(host, port)
    if not host_allowed:
        for ip in ips:
            why = forbidden_reason(ip)
            if why is not None and not policy.allowlist.allows_ip(ip):
                raise FetchBlocked(
                    f"host {host!r} resolves to a forbidden address ({ip}: {why}); operators allow a host "
                    f"with {policy.allowlist_setting}"
                )
    ip = ips[0]
    ip_host = f"[{ip}]" if ip.version == 6 else str(ip)
    default_port = url.port is None
    host_header = host if literal is None else ip_host
    if literal is not None and ip.version == 6:
        host_header = f"[{host.strip('[]')}]"
    if not default_port:
        host_header = f"{host_header}:{port}"
    connect_url = url.copy_with(host=str(ip))
    sni = host if (scheme == "https" and literal is None) else None
    return Target(url=url, connect_url=connect_url, host_header=host_header, sni_hostname=sni)


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
