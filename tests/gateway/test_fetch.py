"""SSRF-safe fetcher: address parsing, refusals in every encoding, redirects, limits, timeouts."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from imgapi_common.fetch import (
    Allowlist,
    FetchBlocked,
    FetchError,
    FetchPolicy,
    FetchTooLarge,
    IPAddress,
    SafeFetcher,
    forbidden_reason,
    parse_host,
)


class QuietServer(ThreadingHTTPServer):
    """A test server that does not print tracebacks when a client hangs up early."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/ok":
            body = b'{"ok": true, "host": "%s"}' % self.headers.get("Host", "").encode()
            self._send(200, body)
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query.removeprefix("to="))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/loop":
            self.send_response(301)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/big":
            self._send(200, b"x" * 100_000)
        elif path == "/slow":
            time.sleep(2)
            self._send(200, b"late")
        else:
            self._send(404, b"{}")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = QuietServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


async def _fake_dns(host: str, port: int) -> list[IPAddress]:
    table = {
        "good.test": ["127.0.0.1"],
        "evil.test": ["93.184.216.34", "127.0.0.1"],  # one public, one loopback answer
        "meta.test": ["169.254.169.254"],
    }
    if host not in table:
        raise FetchError(f"no such host {host}")
    return [ipaddress.ip_address(a) for a in table[host]]


def _fetch(url: str, policy: FetchPolicy | None = None, follow: bool = True) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        f = SafeFetcher(policy or FetchPolicy(connect_timeout=1, read_timeout=1), resolver=_fake_dns)
        async with f.open(url, follow_redirects=follow) as r:
            return r.status_code, await r.read()

    return asyncio.run(go())


LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "017700000001",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "0x7f.1",
    "127.1",
    "127.0.1",
    "127.0.0.1.",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[::127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::]",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_spellings_parse_to_loopback(host: str) -> None:
    ip = parse_host(host)
    assert ip is not None
    assert forbidden_reason(ip) is not None


@pytest.mark.parametrize(
    "addr",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "198.18.0.1",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "fec0::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2002:a9fe:a9fe::1",
    ],
)
def test_forbidden_addresses(addr: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(addr)) is not None


@pytest.mark.parametrize("addr", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_allowed(addr: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(addr)) is None


@pytest.mark.parametrize("host", ["example.com", "a.b-c.test", "1.example.com"])
def test_dns_names_are_not_literals(host: str) -> None:
    assert parse_host(host) is None


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "1.2.3.4294967296", "foo.123", "08.1.1.1"])
def test_invalid_numeric_hosts_refused(host: str) -> None:
    with pytest.raises(FetchBlocked):
        parse_host(host)


@pytest.mark.parametrize("host", [*LOOPBACK_SPELLINGS, "localhost", "good.test", "evil.test"])
def test_fetch_refuses_loopback_in_every_encoding(server: int, host: str) -> None:
    with pytest.raises(FetchBlocked):
        _fetch(f"http://{host}:{server}/ok")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://meta.test/computeMetadata/v1/",
        "http://metadata.google.internal/",
        "http://10.0.0.1/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://0/",
        "ftp://93.184.216.34/",
        "file:///etc/passwd",
        "http://user:pw@93.184.216.34/",
    ],
)
def test_fetch_refuses_other_targets(url: str) -> None:
    with pytest.raises(FetchBlocked):
        _fetch(url)


def test_allowlist_cidr_reaches_loopback(server: int) -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse(["127.0.0.0/8"]))
    status, body = _fetch(f"http://127.0.0.1:{server}/ok", policy)
    assert status == 200 and b'"ok": true' in body
    # Odd spellings resolve to the same allowed address.
    assert _fetch(f"http://2130706433:{server}/ok", policy)[0] == 200


def test_allowlist_host_keeps_host_header(server: int) -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse("good.test"))
    status, body = _fetch(f"http://good.test:{server}/ok", policy)
    assert status == 200
    assert f"good.test:{server}".encode() in body


@pytest.mark.parametrize(
    "to",
    [
        "http://127.0.0.1:{port}/ok",
        "http://0x7f000001:{port}/ok",
        "http://[::1]:{port}/ok",
        "http://evil.test:{port}/ok",
        "http://169.254.169.254/",
        "http://10.0.0.1/",
        "ftp://good.test/",
    ],
)
def test_redirect_targets_rechecked(server: int, to: str) -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse("good.test"))
    with pytest.raises(FetchBlocked):
        _fetch(f"http://good.test:{server}/redirect?to={to.format(port=server)}", policy)


def test_allowed_redirect_followed(server: int) -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse("good.test"))
    status, body = _fetch(f"http://good.test:{server}/redirect?to=/ok", policy)
    assert status == 200 and b"ok" in body


def test_redirect_not_followed_when_asked(server: int) -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse("good.test"))
    status, _ = _fetch(f"http://good.test:{server}/redirect?to=/ok", policy, follow=False)
    assert status == 302


def test_redirect_loop(server: int) -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse("good.test"), max_redirects=3)
    with pytest.raises(FetchError, match="too many redirects"):
        _fetch(f"http://good.test:{server}/loop", policy)


def test_https_only() -> None:
    with pytest.raises(FetchBlocked, match="https"):
        _fetch("http://93.184.216.34/", FetchPolicy(https_only=True))


def test_size_limit(server: int) -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse("good.test"), max_size=1000)
    with pytest.raises(FetchTooLarge):
        _fetch(f"http://good.test:{server}/big", policy)


def test_read_timeout(server: int) -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse("good.test"), read_timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(FetchError):
        _fetch(f"http://good.test:{server}/slow", policy)
    assert time.monotonic() - t0 < 1.9


def test_total_timeout(server: int) -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse("good.test"), total_timeout=0.3)
    with pytest.raises(FetchError):
        _fetch(f"http://good.test:{server}/slow", policy)


def test_connection_refused_is_fetch_error() -> None:
    policy = FetchPolicy(allowlist=Allowlist.parse("127.0.0.1"))
    with pytest.raises(FetchError) as ei:
        _fetch("http://127.0.0.1:1/", policy)
    assert not isinstance(ei.value, FetchBlocked)
