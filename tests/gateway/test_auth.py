"""HTTP Signature authentication: strict / passive / none routes, keys from config and files."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.gateway.conftest import Stack, start_stack
from tests.gateway.helpers import err

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def openssh(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {
        "alice": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "bob": ec.generate_private_key(ec.SECP256R1()),
        "carol": ed25519.Ed25519PrivateKey.generate(),
        "mallory": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def sig_stack(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, PrivateKey], keydir: Path
) -> Iterator[Stack]:
    (keydir / "bob.keys").write_text(f"# bob\n\n{openssh(keys['bob'])}\n")
    (keydir / "carol.keys").write_text(openssh(keys["carol"]) + "\n")
    stack = start_stack(
        tmp_path_factory.mktemp("sig"),
        mode="public",
        admin_uuid=None,
        auth_type="signature",
        auth_keys_dir=str(keydir),
        auth_keys={"alice": ["not a key", openssh(keys["alice"])]},
    )
    yield stack
    stack.stop()


def signed(
    key: PrivateKey,
    user: str,
    algorithm: str = "rsa-sha256",
    date: str | None = None,
    headers: str | None = None,
) -> dict[str, str]:
    date = date or formatdate(usegmt=True)
    data = f"date: {date}".encode()
    if isinstance(key, rsa.RSAPrivateKey):
        h = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha512": hashes.SHA512()}[
            algorithm.lower().split("-")[1]
        ]
        sig = key.sign(data, padding.PKCS1v15(), h)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        sig = key.sign(data)
    extra = f',headers="{headers}"' if headers else ""
    b64 = base64.b64encode(sig).decode()
    return {
        "Date": date,
        "Authorization": f'Signature keyId="{user}",algorithm="{algorithm}"{extra},signature="{b64}"',
    }


@pytest.fixture()
def sc(sig_stack: Stack) -> Iterator[httpx.Client]:
    with sig_stack.client(**{"Accept-Version": "*"}) as c:
        yield c


def test_strict_routes_need_auth(sc: httpx.Client, keys: dict[str, PrivateKey]) -> None:
    assert err(sc.post("/images", json={}), 401, "UnauthorizedError")["message"] == "Unauthorized"
    err(sc.get("/state"), 401, "UnauthorizedError")
    err(sc.post("/authkeys/reload"), 401, "UnauthorizedError")
    err(sc.delete("/images/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12), 401, "UnauthorizedError")
    # strict: auth before the uuid shape
    err(sc.post("/images/nope?action=activate", json={}), 401, "UnauthorizedError")
    assert sc.get("/state", headers=signed(keys["alice"], "alice")).status_code == 200


def test_passive_routes(sc: httpx.Client, keys: dict[str, PrivateKey]) -> None:
    assert sc.get("/ping").json() == {"ping": "pong", "version": "4.11.0", "imgapi": True}
    r = sc.get("/ping", headers=signed(keys["alice"], "alice"))
    body = r.json()
    assert body["user"] == "alice" and isinstance(body["pid"], int)
    assert list(body) == ["ping", "version", "imgapi", "pid", "user"]
    err(sc.get("/ping", headers=signed(keys["mallory"], "alice")), 401, "UnauthorizedError")
    err(sc.get("/images", headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401, "UnauthorizedError")
    # passive GetImage: uuid shape before auth
    err(sc.get("/images/nope", headers={"Authorization": "garbage"}), 404, "ResourceNotFound")
    # authenticated users may use inclAdminFields on a public server
    assert sc.get("/images?inclAdminFields=true", headers=signed(keys["alice"], "alice")).status_code == 200
    err(sc.get("/images?inclAdminFields=true"), 401, "UnauthorizedError")


def test_auth_none_routes_ignore_header(sc: httpx.Client) -> None:
    assert sc.get("/datasets", headers={"Authorization": "garbage"}).status_code == 301


@pytest.mark.parametrize(
    ("user", "algorithm"),
    [
        ("alice", "rsa-sha1"),
        ("alice", "rsa-sha256"),
        ("alice", "RSA-SHA512"),
        ("bob", "ecdsa-sha256"),
        ("carol", "ed25519"),
    ],
)
def test_algorithms_accepted(
    sc: httpx.Client, keys: dict[str, PrivateKey], user: str, algorithm: str
) -> None:
    r = sc.get("/ping", headers=signed(keys[user], user, algorithm.lower() if user != "alice" else algorithm))
    assert r.status_code == 200, r.text
    assert r.json()["user"] == user


def test_refusals(sc: httpx.Client, keys: dict[str, PrivateKey]) -> None:
    h = signed(keys["alice"], "alice")
    bad_alg = h["Authorization"].replace("rsa-sha256", "hmac-sha256")
    assert (
        "hmac-sha256"
        in err(sc.get("/ping", headers={**h, "Authorization": bad_alg}), 401, "UnauthorizedError")["message"]
    )
    err(sc.get("/ping", headers=signed(keys["alice"], "nobody")), 401, "UnauthorizedError")
    err(sc.get("/ping", headers=signed(keys["bob"], "alice", "ecdsa-sha256")), 401, "UnauthorizedError")
    old = formatdate(time.time() - 400, usegmt=True)
    err(sc.get("/ping", headers=signed(keys["alice"], "alice", date=old)), 401, "UnauthorizedError")
    ok_skew = formatdate(time.time() - 200, usegmt=True)
    assert sc.get("/ping", headers=signed(keys["alice"], "alice", date=ok_skew)).status_code == 200
    tampered = signed(keys["alice"], "alice", date=formatdate(time.time() - 10, usegmt=True))
    tampered["Date"] = formatdate(time.time(), usegmt=True)
    err(sc.get("/ping", headers=tampered), 401, "UnauthorizedError")


def test_reload_picks_up_new_key_files(sc: httpx.Client, keys: dict[str, PrivateKey], keydir: Path) -> None:
    dave = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    err(sc.get("/ping", headers=signed(dave, "dave")), 401, "UnauthorizedError")
    (keydir / "dave.keys").write_text(openssh(dave) + "\n")
    r = sc.post("/authkeys/reload", headers=signed(keys["alice"], "alice"))
    assert r.status_code == 200 and r.json() == {}
    assert sc.get("/ping", headers=signed(dave, "dave")).json()["user"] == "dave"
