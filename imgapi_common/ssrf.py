"""The one SSRF guard of every outbound fetch (gateway imports, the replication REST source).

Whoever fetches a URL chosen by a caller or an operator checks each hop here:

* the host is parsed the way resolvers and browsers parse it (``inet_aton`` / WHATWG forms:
  ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``, bracketed IPv6 with zone ids), and DNS
  names are resolved by the caller **once**; the connection then goes to the checked address
  (:class:`Target`: the original name is kept for ``Host`` and TLS SNI / certificate
  verification), so a second lookup cannot rebind;
* every address is refused unless it is globally routable unicast: loopback, private, link-local,
  CGNAT, multicast, unspecified, reserved, documentation, cloud metadata addresses, and IPv6
  forms embedding such an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo).

An operator allow-list (:class:`Allowlist`: host names, ``*.suffix`` patterns, IP addresses or
CIDRs) exempts trusted hosts, e.g. a sibling IMGAPI on a private network — or loopback test servers.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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
DENY_HOSTNAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})


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
    #: The setting an operator edits to allow a refused host (named in every refusal).
    setting: str = ""

    @classmethod
    def parse(cls, entries: Sequence[str] | str | None, setting: str = "") -> Allowlist:
        if entries is None:
            return cls(setting=setting)
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
        return cls(frozenset(hosts), tuple(suffixes), tuple(nets), setting)

    def hint(self) -> str:
        """How an operator allows a refused host, for the refusal's text."""
        return f"operators allow a host with {self.setting}" if self.setting else ""

    def allows_host(self, host: str) -> bool:
        h = host.lower().rstrip(".")
        return h in self.hosts or any(h.endswith(s) for s in self.suffixes)

    def allows_ip(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(c in n for c in candidates for n in self.networks if n.version == c.version)


@dataclass(frozen=True)
class Target:
    """A checked hop: the URL to request (host replaced by the checked IP) and how to present it."""

    url: httpx.URL
    connect_url: httpx.URL
    host_header: str
    sni_hostname: str | None


def _vet(url: httpx.URL, https_only: bool) -> tuple[str, int, IPAddress | None]:
    """The URL's host, port and literal address (None for a DNS name); refuses bad forms."""
    scheme = url.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchBlocked(f"unsupported URL scheme {url.scheme!r}")
    if https_only and scheme != "https":
        raise FetchBlocked("Only URLs using the https: scheme are supported")
    if url.userinfo:
        raise FetchBlocked("URLs with credentials are not supported")
    host = url.host
    if not host:
        raise FetchBlocked("URL has no host")
    port = url.port or (443 if scheme == "https" else 80)
    return host, port, parse_host(host)


def refuse_names(host: str, literal: IPAddress | None, allowlist: Allowlist) -> bool:
    """Whether ``host`` is exempt by name; raises for never-wanted names (``localhost``...)."""
    allowed = allowlist.allows_host(host)
    if literal is None and not allowed and host.lower().rstrip(".") in DENY_HOSTNAMES:
        hint = allowlist.hint()
        raise FetchBlocked(f"host {host!r} is not allowed" + (f" ({hint})" if hint else ""))
    return allowed


def pin(url: httpx.URL, literal: IPAddress | None, ips: list[IPAddress], allowlist: Allowlist) -> Target:
    """Check the addresses ``url``'s host resolved to and pin the hop to the first one."""
    host, port = url.host, url.port or (443 if url.scheme.lower() == "https" else 80)
    if not allowlist.allows_host(host):
        for ip in ips:
            why = forbidden_reason(ip)
            if why is not None and not allowlist.allows_ip(ip):
                hint = allowlist.hint()
                raise FetchBlocked(
                    f"host {host!r} resolves to a forbidden address ({ip}: {why})"
                    + (f"; {hint}" if hint else "")
                )
    ip = ips[0]
    ip_host = f"[{ip}]" if ip.version == 6 else str(ip)
    host_header = host if literal is None else ip_host
    if literal is not None and ip.version == 6:
        host_header = f"[{host.strip('[]')}]"
    if url.port is not None:
        host_header = f"{host_header}:{port}"
    connect_url = url.copy_with(host=str(ip))
    sni = host if (url.scheme.lower() == "https" and literal is None) else None
    return Target(url=url, connect_url=connect_url, host_header=host_header, sni_hostname=sni)


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` (blocking ``getaddrinfo``), each once, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise FetchError(f"getaddrinfo {host}: {e.strerror or e}") from e
    return addresses_of(host, infos)


def addresses_of(host: str, infos: Sequence[tuple[object, ...]]) -> list[IPAddress]:
    out: list[IPAddress] = []
    for family, _t, _p, _c, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # type: ignore[index]
            if ip not in out:
                out.append(ip)
    if not out:
        raise FetchError(f"getaddrinfo {host}: no address")
    return out


def check_url(
    url: httpx.URL,
    allowlist: Allowlist,
    *,
    https_only: bool = False,
    resolver: Callable[[str, int], list[IPAddress]] = resolve,
) -> Target:
    """Validate one hop and pin it to a checked address (blocking resolution). Raises
    :class:`FetchBlocked` (policy) or :class:`FetchError` (resolution)."""
    host, port, literal = _vet(url, https_only)
    refuse_names(host, literal, allowlist)
    ips = [literal] if literal is not None else resolver(host, port)
    return pin(url, literal, ips, allowlist)


async def check_url_async(
    url: httpx.URL,
    allowlist: Allowlist,
    resolver: Callable[[str, int], Awaitable[list[IPAddress]]],
    *,
    https_only: bool = False,
) -> Target:
    """:func:`check_url` with an asynchronous resolver."""
    host, port, literal = _vet(url, https_only)
    refuse_names(host, literal, allowlist)
    ips = [literal] if literal is not None else await resolver(host, port)
    return pin(url, literal, ips, allowlist)
