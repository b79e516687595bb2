"""HTTP Signature authentication (``authType: signature``) from the CLI: --user/--key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.cli.conftest import Cli
from tests.gateway.conftest import Stack, start_stack

OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
KEYS: dict[str, PrivateKey] = {
    "alice": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "bob": ec.generate_private_key(ec.SECP256R1()),
    "carol": ed25519.Ed25519PrivateKey.generate(),
}


def public_line(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


@pytest.fixture(scope="module")
def sig_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("cli-sig"),
        mode="private",
        admin_uuid=None,
        auth_type="signature",
        auth_keys={user: [public_line(k)] for user, k in KEYS.items()},
    )
    yield stack
    stack.stop()


def key_file(tmp_path: Path, user: str, fmt: str) -> Path:
    key = KEYS[user]
    if fmt == "openssh":
        data = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    else:
        data = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    path = tmp_path / f"{user}.{fmt}"
    path.write_bytes(data)
    return path


def test_anonymous_writes_are_refused(sig_stack: Stack, tmp_path: Path) -> None:
    cli = Cli(sig_stack, tmp_path)
    r = cli("create", "--name", "x", "--version", "1", "--type", "zone-dataset", "--os", "smartos", code=1)
    assert "UnauthorizedError (HTTP 401)" in r.stderr
    assert cli.json("list", "--json") == []  # passive route: anonymous read is fine
    r = cli("--user", "alice", "list", code=2)  # usage
    assert "needs --key FILE or --key-id FINGERPRINT" in r.stderr


@pytest.mark.parametrize(("user", "fmt"), [("alice", "openssh"), ("bob", "pem"), ("carol", "openssh")])
def test_signed_lifecycle(sig_stack: Stack, tmp_path: Path, user: str, fmt: str) -> None:
    cli = Cli(sig_stack, tmp_path)
    auth = ("--user", user, "--key", str(key_file(tmp_path, user, fmt)), "--account", OWNER)
    img = cli.json(
        *auth,
        "create",
        "--name",
        f"sig-{user}",
        "--version",
        "1",
        "--type",
        "zone-dataset",
        "--os",
        "smartos",
    )
    data = b"signed bytes" * 5000
    src = tmp_path / "f.gz"
    src.write_bytes(data)
    out = cli.json(*auth, "upload", img["uuid"], str(src), "--chunk-size", "16384", "--json")
    assert out["method"] == "tus" and out["sha1"] == hashlib.sha1(data).hexdigest()
    assert cli.json(*auth, "activate", img["uuid"])["state"] == "active"
    assert cli.json(*auth, "ping")["user"] == user
    wrong = ("--user", "alice" if user != "alice" else "bob", "--key", auth[3], "--account", OWNER)
    r = cli(*wrong, "delete", img["uuid"], code=1)
    assert "UnauthorizedError" in r.stderr
    cli(*auth, "delete", img["uuid"])
