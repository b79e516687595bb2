"""Issue 10 item 4: an HTTP Signature must cover the request time, and the skew check reads the signed
value. Signatures over ``request-line``/``(request-target)``/``host`` only, or with a stale signed
``x-date`` next to a fresh unsigned ``Date``, were accepted forever (replayable)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from email.utils import formatdate

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.gateway.conftest import Stack, start_stack
from tests.gateway.helpers import err

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    pub = KEY.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    s = start_stack(
        tmp_path_factory.mktemp("edge-auth"),
        mode="public",
        admin_uuid=None,
        auth_type="signature",
        auth_keys={"alice": [pub.decode()]},
    )
    yield s
    s.stop()


@pytest.fixture()
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as c:
        yield c


def _sign(lines: list[str], headers: str | None, signature: str | None = None, extra: str = "") -> str:
    sig = (
        signature
        or base64.b64encode(KEY.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    )
    listed = f',headers="{headers}"' if headers is not None else ""
    return f'Signature keyId="alice",algorithm="rsa-sha256"{listed}{extra},signature="{sig}"'


def now(offset: float = 0) -> str:
    return formatdate(time.time() + offset, usegmt=True)


DAY = 24 * 3600


def test_date_signed_is_accepted(client: httpx.Client) -> None:
    d = now()
    assert (
        client.get("/state", headers={"Date": d, "Authorization": _sign([f"date: {d}"], None)}).status_code
        == 200
    )
    r = client.get("/state", headers={"Date": d, "Authorization": _sign([f"date: {d}"], "date")})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "headers,lines",
    [
        ("request-line", ["GET /state HTTP/1.1"]),
        ("(request-target)", ["(request-target): get /state"]),
        ("host", ["host: {host}"]),
        ("request-line host", ["GET /state HTTP/1.1", "host: {host}"]),
    ],
)
def test_signature_without_a_signed_time_is_refused(
    client: httpx.Client, stack: Stack, headers: str, lines: list[str]
) -> None:
    """A day-old signature over request-line/host was valid forever: the fresh Date was unsigned."""
    host = stack.base_url.removeprefix("http://")
    auth = _sign([line.format(host=host) for line in lines], headers)
    body = err(client.get("/state", headers={"Date": now(), "Authorization": auth}), 401, "UnauthorizedError")
    assert "date" in body["message"]


def test_request_line_and_date_signed_together_is_accepted(client: httpx.Client) -> None:
    d = now()
    auth = _sign(["GET /state HTTP/1.1", f"date: {d}"], "request-line date")
    assert client.get("/state", headers={"Date": d, "Authorization": auth}).status_code == 200
    auth = _sign(["(request-target): get /state", f"date: {d}"], "(request-target) date")
    assert client.get("/state", headers={"Date": d, "Authorization": auth}).status_code == 200


def test_skew_reads_the_signed_x_date_not_the_unsigned_date(client: httpx.Client) -> None:
    old = now(-DAY)
    auth = _sign([f"x-date: {old}"], "x-date")
    err(
        client.get("/state", headers={"Date": now(), "x-date": old, "Authorization": auth}),
        401,
        "UnauthorizedError",
    )
    fresh = now()
    auth = _sign([f"x-date: {fresh}"], "x-date")
    assert (
        client.get("/state", headers={"Date": old, "x-date": fresh, "Authorization": auth}).status_code == 200
    )


# 300 s is the window. A past date only gets older on its way (and an HTTP date drops the
# fraction of a second, which makes it older still), so -301 is outside whatever the timing. A
# future date is truncated and then the request takes time: +310 stays outside even on a loaded
# machine, where +301 could arrive as 299.5 s ahead.
@pytest.mark.parametrize("offset", [-DAY, -301, 310, DAY])
def test_signed_date_outside_the_window_is_refused(client: httpx.Client, offset: int) -> None:
    d = now(offset)
    err(
        client.get("/state", headers={"Date": d, "Authorization": _sign([f"date: {d}"], "date")}),
        401,
        "UnauthorizedError",
    )


def test_signed_but_unparsable_date_is_refused(client: httpx.Client) -> None:
    auth = _sign(["date: yesterday"], "date")
    err(client.get("/state", headers={"Date": "yesterday", "Authorization": auth}), 401, "UnauthorizedError")


@pytest.mark.parametrize(
    "authorization",
    [
        "Signature",
        'Signature keyId="alice"',
        'Signature keyId="alice",algorithm="rsa-sha256"',
        'Signature keyId=alice,algorithm="rsa-sha256",signature="AAAA"',
        'Signature keyId="alice",algorithm="rsa-sha256",signature="AAAA",',
        'Signature keyId="alice" algorithm="rsa-sha256" signature="AAAA"',
        'Signature keyId="alice",algorithm="rsa-sha256",signature="not base64!"',
        'Signature keyId="alice",algorithm="rsa-sha256",signature="QUJD="',
        'Signature keyId="alice",algorithm="hmac-sha256",signature="QUJD"',
        'Signature keyId="",algorithm="rsa-sha256",signature="QUJD"',
    ],
)
def test_malformed_parameters_are_401_json(client: httpx.Client, authorization: str) -> None:
    err(
        client.get("/state", headers={"Date": now(), "Authorization": authorization}),
        401,
        "UnauthorizedError",
    )


def test_listed_header_missing_from_the_request_is_refused(client: httpx.Client) -> None:
    d = now()
    auth = _sign([f"date: {d}", "x-custom: 1"], "date x-custom")
    err(client.get("/state", headers={"Date": d, "Authorization": auth}), 401, "UnauthorizedError")
