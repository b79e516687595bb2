"""gateway/http/auth.py without a server: HTTP Signature verification on requests built in memory.

The HTTP tests (test_auth.py) drive the same code through a stack; these are fast enough for
scripts/mutation, and pin the exact 401 messages a client sees, the signed request line forms, the
clock-skew boundary and the key store.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from starlette.requests import Request

from gateway.http.auth import AuthMode, KeyStore, authenticate, parse_authorization, verify_request
from gateway.settings import GatewaySettings
from imgapi_common.errors import ImgapiError

#: DSA keys are still accepted (with a deprecation warning from cryptography): they are tested.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

PrivateKey = rsa.RSAPrivateKey | dsa.DSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
NOW = 1_700_000_000.0
DATE = formatdate(NOW, usegmt=True)
SKEW = 300
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


OPENSSH = (serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)


def openssh(key: PrivateKey) -> str:
    return key.public_key().public_bytes(*OPENSSH).decode()


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=1024),
        "dsa": dsa.generate_private_key(key_size=1024),
        "ecdsa": ec.generate_private_key(ec.SECP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


@pytest.fixture(scope="module")
def store(keys: dict[str, PrivateKey]) -> KeyStore:
    s = KeyStore(GatewaySettings(auth_keys={name: [openssh(k)] for name, k in keys.items()}))
    s.reload()
    return s


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW)


def sign(key: PrivateKey, hash_name: str, data: bytes) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(data, padding.PKCS1v15(), HASHES[hash_name]())
    elif isinstance(key, dsa.DSAPrivateKey):
        sig = key.sign(data, HASHES[hash_name]())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(data, ec.ECDSA(HASHES[hash_name]()))
    else:
        sig = key.sign(data)
    return base64.b64encode(sig).decode()


def request(
    headers: dict[str, str],
    method: str = "GET",
    path: str = "/images",
    query: str = "",
    **scope_changes: Any,
) -> Request:
    """An HTTP request scope; ``scope_changes`` set (or, when None, remove) scope keys."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "http_version": "1.1",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    scope.update(scope_changes)
    return Request({k: v for k, v in scope.items() if v is not None})


def authorization(user: str, algorithm: str, signature: str, signed: str | None = None) -> str:
    extra = f',headers="{signed}"' if signed is not None else ""
    return f'Signature keyId="{user}",algorithm="{algorithm}"{extra},signature="{signature}"'


def date_request(key: PrivateKey, user: str, algorithm: str, date: str = DATE) -> Request:
    hash_name = algorithm.lower().partition("-")[2] or "sha512"
    sig = sign(key, hash_name, f"date: {date}".encode())
    return request({"Date": date, "Authorization": authorization(user, algorithm, sig)})


def refusal(req: Request, store: KeyStore, skew: int = SKEW) -> str:
    with pytest.raises(ImgapiError) as e:
        verify_request(req, store, skew)
    assert e.value.code == "UnauthorizedError"
    return e.value.message


@pytest.mark.parametrize(
    "user,algorithm",
    [
        ("rsa", "rsa-sha1"),
        ("rsa", "rsa-sha256"),
        ("rsa", "RSA-SHA512"),
        ("dsa", "dsa-sha1"),
        ("dsa", "dsa-sha256"),
        ("ecdsa", "ecdsa-sha256"),
        ("ecdsa", "ecdsa-sha384"),
        ("ecdsa", "ecdsa-sha512"),
        ("ed25519", "ed25519"),
        ("ed25519", "ed25519-sha512"),
    ],
)
def test_each_supported_algorithm_verifies(
    keys: dict[str, PrivateKey], store: KeyStore, user: str, algorithm: str
) -> None:
    assert verify_request(date_request(keys[user], user, algorithm), store, SKEW) == user


@pytest.mark.parametrize(
    "user,algorithm",
    [("rsa", "rsa-sha384"), ("dsa", "dsa-sha512"), ("ecdsa", "ecdsa-sha1"), ("ed25519", "ed25519-sha256")],
)
def test_unsupported_hashes_are_refused(
    keys: dict[str, PrivateKey], store: KeyStore, user: str, algorithm: str
) -> None:
    assert (
        refusal(date_request(keys[user], user, algorithm), store)
        == f"{algorithm} is not a supported algorithm"
    )


def test_hmac_and_unknown_algorithms_are_refused(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    for algorithm in ("hmac-sha256", "HMAC-SHA1", "foo-sha256", "rsa"):
        req = date_request(keys["rsa"], "rsa", "rsa-sha256")
        header = req.headers["authorization"].replace("rsa-sha256", algorithm)
        req = request({"Date": DATE, "Authorization": header})
        assert refusal(req, store) == f"{algorithm} is not a supported algorithm"


def test_a_key_of_another_type_or_user_does_not_verify(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    # the ecdsa user's key cannot verify an rsa signature, nor the rsa key one made for "ed25519"
    assert refusal(date_request(keys["rsa"], "ecdsa", "rsa-sha256"), store) == "Unauthorized"
    assert refusal(date_request(keys["ecdsa"], "rsa", "ecdsa-sha256"), store) == "Unauthorized"
    assert refusal(date_request(keys["rsa"], "ed25519", "ed25519"), store) == "Unauthorized"
    assert refusal(date_request(keys["ed25519"], "rsa", "ed25519"), store) == "Unauthorized"
    assert refusal(date_request(keys["dsa"], "ecdsa", "dsa-sha256"), store) == "Unauthorized"
    assert refusal(date_request(keys["rsa"], "nobody", "rsa-sha256"), store) == "Unauthorized"


def test_a_tampered_date_does_not_verify(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    req = date_request(keys["rsa"], "rsa", "rsa-sha256", formatdate(NOW - 10, usegmt=True))
    tampered = request({"Date": DATE, "Authorization": req.headers["authorization"]})
    assert refusal(tampered, store) == "Unauthorized"


def test_bad_base64_is_refused(store: KeyStore) -> None:
    req = request({"Date": DATE, "Authorization": authorization("rsa", "rsa-sha256", "not*base64")})
    assert refusal(req, store) == "signature is not valid base64"


def test_a_signature_with_a_stray_character_is_refused(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    sig = sign(keys["ed25519"], "", f"date: {DATE}".encode())
    assert verify_request(
        request({"Date": DATE, "Authorization": authorization("ed25519", "ed25519", sig)}), store, SKEW
    )
    stray = sig[:8] + "*" + sig[8:]  # a lenient decoder would drop the "*" and accept it
    req = request({"Date": DATE, "Authorization": authorization("ed25519", "ed25519", stray)})
    assert refusal(req, store) == "signature is not valid base64"


def test_the_clock_skew_boundary(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    for offset in (-SKEW, SKEW):
        req = date_request(keys["ed25519"], "ed25519", "ed25519", formatdate(NOW + offset, usegmt=True))
        assert verify_request(req, store, SKEW) == "ed25519"
    past = date_request(keys["ed25519"], "ed25519", "ed25519", formatdate(NOW - SKEW - 1, usegmt=True))
    assert refusal(past, store) == "clock skew of 301s was greater than 300s"
    future = date_request(keys["ed25519"], "ed25519", "ed25519", formatdate(NOW + 1000, usegmt=True))
    assert refusal(future, store) == "clock skew of 1000s was greater than 300s"
    assert verify_request(date_request(keys["ed25519"], "ed25519", "ed25519"), store, 0) == "ed25519"


def test_the_date_must_be_signed_and_parse(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    key = keys["ed25519"]
    host_only = request(
        {
            "Date": DATE,
            "Host": "h",
            "Authorization": authorization("ed25519", "ed25519", sign(key, "", b"host: h"), "host"),
        }
    )
    assert refusal(host_only, store) == 'the signature must cover the "date" or "x-date" header'
    bad = "yesterday"
    req = request(
        {"Date": bad, "Authorization": authorization("ed25519", "ed25519", sign(key, "", b"date: yesterday"))}
    )
    assert refusal(req, store) == "invalid date header: yesterday"


def test_x_date_and_both_dates(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    key = keys["ed25519"]
    data = f"x-date: {DATE}".encode()
    req = request(
        {"X-Date": DATE, "Authorization": authorization("ed25519", "ed25519", sign(key, "", data), "x-date")}
    )
    assert verify_request(req, store, SKEW) == "ed25519"
    old = formatdate(NOW - 1000, usegmt=True)
    data = f"date: {DATE}\nx-date: {old}".encode()
    both = request(
        {
            "Date": DATE,
            "X-Date": old,
            "Authorization": authorization("ed25519", "ed25519", sign(key, "", data), "date x-date"),
        }
    )
    assert refusal(both, store) == "clock skew of 1000s was greater than 300s"


def test_a_signed_header_missing_from_the_request(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    sig = sign(keys["ed25519"], "", b"irrelevant")
    req = request(
        {"Date": DATE, "Authorization": authorization("ed25519", "ed25519", sig, "date content-md5")}
    )
    assert refusal(req, store) == "content-md5 was not in the request"


@pytest.mark.parametrize(
    "name,line",
    [
        ("request-line", "GET /images/x?a=1&b=2 HTTP/1.1"),
        ("(request-target)", "(request-target): get /images/x?a=1&b=2"),
    ],
)
def test_request_line_signing(keys: dict[str, PrivateKey], store: KeyStore, name: str, line: str) -> None:
    key = keys["ed25519"]
    sig = sign(key, "", f"{line}\ndate: {DATE}".encode())
    auth = authorization("ed25519", "ed25519", sig, f"{name} Date")
    ok = request({"Date": DATE, "Authorization": auth}, path="/images/x", query="a=1&b=2")
    assert verify_request(ok, store, SKEW) == "ed25519"
    other_query = request({"Date": DATE, "Authorization": auth}, path="/images/x", query="a=1")
    assert refusal(other_query, store) == "Unauthorized"
    other_method = request(
        {"Date": DATE, "Authorization": auth}, method="POST", path="/images/x", query="a=1&b=2"
    )
    assert refusal(other_method, store) == "Unauthorized"


def test_request_line_without_a_query(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    key = keys["ed25519"]
    line = f"GET /ping HTTP/1.1\n(request-target): get /ping\ndate: {DATE}"
    auth = authorization(
        "ed25519", "ed25519", sign(key, "", line.encode()), "request-line (request-target) date"
    )
    assert (
        verify_request(request({"Date": DATE, "Authorization": auth}, path="/ping"), store, SKEW) == "ed25519"
    )


@pytest.mark.parametrize(
    "header,message",
    [
        ("", "empty scheme is not supported (expected Signature)"),
        ('Basic keyId="a"', "Basic scheme is not supported (expected Signature)"),
        ('Signature keyId="a",,', "bad param format at position 10 of the Authorization header"),
        ('Signature algorithm="rsa-sha256",signature="x"', "keyId was not specified"),
        ('Signature keyId="a",signature="x"', "algorithm was not specified"),
        ('Signature keyId="a",algorithm="rsa-sha256",signature=""', "signature was not specified"),
    ],
)
def test_malformed_authorization(header: str, message: str) -> None:
    with pytest.raises(ImgapiError) as e:
        parse_authorization(header)
    assert (e.value.code, e.value.message) == ("UnauthorizedError", message)


def test_parameters_with_spaces_and_any_case_scheme() -> None:
    assert parse_authorization(' signature keyId = "u" , algorithm="a",  signature="s" ') == {
        "keyId": "u",
        "algorithm": "a",
        "signature": "s",
    }


def test_authenticate_applies_the_route_mode(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    on = GatewaySettings(auth_type="signature", auth_clock_skew_seconds=SKEW)
    off = GatewaySettings(auth_type="none")
    signed = date_request(keys["rsa"], "rsa", "rsa-sha256")
    anonymous = request({"Date": DATE})
    assert authenticate(signed, AuthMode.STRICT, on, store) == "rsa"
    assert authenticate(signed, AuthMode.PASSIVE, on, store) == "rsa"
    assert authenticate(signed, AuthMode.NONE, on, store) is None
    assert authenticate(signed, AuthMode.STRICT, off, store) is None
    assert authenticate(signed, AuthMode.STRICT, on, None) is None
    assert authenticate(anonymous, AuthMode.PASSIVE, on, store) is None
    with pytest.raises(ImgapiError) as e:
        authenticate(anonymous, AuthMode.STRICT, on, store)
    assert (e.value.code, e.value.message) == ("UnauthorizedError", "Unauthorized")
    late = date_request(keys["rsa"], "rsa", "rsa-sha256", formatdate(NOW - 100, usegmt=True))
    strict = GatewaySettings(auth_type="signature", auth_clock_skew_seconds=50)
    with pytest.raises(ImgapiError) as e:
        authenticate(late, AuthMode.PASSIVE, strict, store)
    assert e.value.message == "clock skew of 100s was greater than 50s"


def test_key_store_reads_settings_and_key_files(keys: dict[str, PrivateKey], tmp_path: Path) -> None:
    (tmp_path / "carol.keys").write_text(f"# carol's keys\n\n  {openssh(keys['rsa'])}  \nnot a key\n")
    (tmp_path / "dave.keys").write_text(f"{openssh(keys['ecdsa'])}\n{openssh(keys['ed25519'])}\n")
    (tmp_path / "ignored.txt").write_text(openssh(keys["rsa"]))
    settings = GatewaySettings(
        auth_keys={"erin": [openssh(keys["dsa"]), "ssh-rsa AAAA"]}, auth_keys_dir=str(tmp_path)
    )
    s = KeyStore(settings)
    assert s.users == [] and s.keys_for("carol") == [] and s.loaded_at == 0.0
    s.reload()
    assert s.users == ["carol", "dave", "erin"]
    assert [type(k) for k in s.keys_for("dave")] == [
        type(keys["ecdsa"].public_key()),
        type(keys["ed25519"].public_key()),
    ]
    assert len(s.keys_for("carol")) == 1 and len(s.keys_for("erin")) == 1
    assert s.loaded_at == NOW
    assert s.keys_for("ignored") == []


@pytest.mark.parametrize(
    "scope,line",
    [
        # the path as sent (still percent-encoded), not the decoded one
        ({"path": "/images/a b", "raw_path": b"/images/a%20b"}, "GET /images/a%20b HTTP/1.0"),
        ({"path": "/images/a b", "raw_path": None}, "GET /images/a b HTTP/1.0"),
    ],
)
def test_the_request_line_is_the_one_sent(
    keys: dict[str, PrivateKey], store: KeyStore, scope: dict[str, Any], line: str
) -> None:
    key = keys["ed25519"]
    target = line.split(" ", 1)[1].rsplit(" ", 1)[0]
    data = f"{line}\n(request-target): get {target}\ndate: {DATE}"
    auth = authorization(
        "ed25519", "ed25519", sign(key, "", data.encode()), "request-line (request-target) date"
    )
    req = request({"Date": DATE, "Authorization": auth}, http_version="1.0", **scope)
    assert verify_request(req, store, SKEW) == "ed25519"


def test_the_request_line_version_defaults_to_1_1(keys: dict[str, PrivateKey], store: KeyStore) -> None:
    data = f"GET /ping HTTP/1.1\ndate: {DATE}"
    auth = authorization("ed25519", "ed25519", sign(keys["ed25519"], "", data.encode()), "request-line date")
    req = request({"Date": DATE, "Authorization": auth}, path="/ping", http_version=None)
    assert verify_request(req, store, SKEW) == "ed25519"


def test_an_unreadable_key_file_does_not_hide_the_others(keys: dict[str, PrivateKey], tmp_path: Path) -> None:
    (tmp_path / "a.keys").mkdir()  # sorted first; reading it fails
    (tmp_path / "b.keys").write_text(openssh(keys["rsa"]) + "\n")
    s = KeyStore(GatewaySettings(auth_keys_dir=str(tmp_path)))
    s.reload()
    assert s.users == ["b"]
