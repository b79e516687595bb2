"""HTTP Signature authentication as the node client does it (``authType: signature`` servers).

Every request carries ``Date`` and ``Authorization: Signature keyId="<user>",algorithm="<alg>",
signature="<base64>"`` signing the string ``date: <Date>``. ``keyId`` is the user name. RSA keys sign
with ``rsa-sha256`` (what the reference accepts); ECDSA keys with ``ecdsa-sha256/384/512`` and Ed25519
keys with ``ed25519`` (accepted by this project's gateway, an allowed extension). Keys are read from
OpenSSH (``-----BEGIN OPENSSH PRIVATE KEY-----``, passphrase-protected ones included: bcrypt KDF) or
PEM files, or used through ``ssh-agent`` (imgapi_cli/agent.py), chosen by fingerprint (``--key-id``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Generator
from email.utils import formatdate
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from imgapi_cli.agent import Agent, AgentKey, matches
from imgapi_cli.client import CliError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_EC_HASHES: dict[int, tuple[str, hashes.HashAlgorithm]] = {
    256: ("ecdsa-sha256", hashes.SHA256()),
    384: ("ecdsa-sha384", hashes.SHA384()),
    521: ("ecdsa-sha512", hashes.SHA512()),
}


def load_key(
    path: Path,
    passphrase: str | None = None,
    prompt: Callable[[str], str] | None = None,
    key_id: str | None = None,
) -> PrivateKey:
    """The private key in ``path``. An encrypted key takes ``passphrase``, else asks ``prompt`` (a
    terminal), else fails saying how to give one. ``key_id``: the key's fingerprint must match."""
    try:
        data = path.expanduser().read_bytes()
    except OSError as e:
        raise CliError("InvalidKey", f"{path}: {e.strerror or e}") from None
    key = _parse_key(path, data, passphrase)
    if key is None:
        if prompt is None:
            raise CliError(
                "InvalidKey",
                f"{path} is protected by a passphrase: set IMGAPI_KEY_PASSPHRASE, run in a terminal to be "
                "asked, or use ssh-agent (--key-id FINGERPRINT without --key)",
            )
        key = _parse_key(path, data, prompt(f"Passphrase for {path}: "))
        if key is None:
            raise CliError("InvalidKey", f"{path}: a passphrase is needed")
    if key_id and not matches(key_id, public_blob(key)):
        raise CliError("InvalidKey", f"{path} is not the key {key_id} (--key-id)")
    return key


def _parse_key(path: Path, data: bytes, passphrase: str | None) -> PrivateKey | None:
    """The key, or None when it is encrypted and no passphrase was given."""
    pw = passphrase.encode() if passphrase else None
    key: object
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, pw)
        else:
            key = serialization.load_pem_private_key(data, pw)
    except TypeError as e:
        if pw is None and "password" in str(e).lower():
            return None
        raise CliError("InvalidKey", f"{path}: cannot load the private key: {e}") from None
    except ValueError as e:
        why = "wrong passphrase" if pw is not None else str(e)
        raise CliError("InvalidKey", f"{path}: cannot load the private key: {why}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise CliError("InvalidKey", f"{path}: unsupported key type {type(key).__name__}")
    return key


def public_blob(key: PrivateKey) -> bytes:
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def sign_with_key(key: PrivateKey, data: bytes) -> tuple[str, bytes]:
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa-sha256", key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm, h = _EC_HASHES.get(key.curve.key_size, _EC_HASHES[256])
        return algorithm, key.sign(data, ec.ECDSA(h))
    return "ed25519", key.sign(data)


class SignatureAuth(httpx.Auth):
    """Signs with a private key, or with ``agent_key`` held by ``agent`` (ssh-agent)."""

    def __init__(
        self,
        user: str,
        key: PrivateKey | None = None,
        *,
        agent: Agent | None = None,
        agent_key: AgentKey | None = None,
    ) -> None:
        if key is None and (agent is None or agent_key is None):
            raise ValueError("SignatureAuth needs a key or an ssh-agent key")
        self.user = user
        self.key = key
        self.agent, self.agent_key = agent, agent_key

    def sign(self, date: str) -> str:
        data = f"date: {date}".encode()
        if self.key is not None:
            algorithm, sig = sign_with_key(self.key, data)
        else:
            assert self.agent is not None and self.agent_key is not None
            algorithm, sig = self.agent.sign(self.agent_key, data)
        b64 = base64.b64encode(sig).decode()
        return f'Signature keyId="{self.user}",algorithm="{algorithm}",signature="{b64}"'

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        date = formatdate(usegmt=True)
        request.headers["Date"] = date
        request.headers["Authorization"] = self.sign(date)
        yield request
