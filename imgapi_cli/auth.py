"""HTTP Signature authentication as the node client does it (``authType: signature`` servers).

Every request carries ``Date`` and ``Authorization: Signature keyId="<user>",algorithm="<alg>",
signature="<base64>"`` signing the string ``date: <Date>``. ``keyId`` is the user name. RSA keys sign
with ``rsa-sha256`` (what the reference accepts); ECDSA keys with ``ecdsa-sha256/384/512`` and Ed25519
keys with ``ed25519`` (accepted by this project's gateway, an allowed extension). Keys are read from
OpenSSH (``-----BEGIN OPENSSH PRIVATE KEY-----``) or PEM files.
"""

from __future__ import annotations

import base64
from collections.abc import Generator
from email.utils import formatdate
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from imgapi_cli.client import ImgapiError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_EC_HASHES: dict[int, tuple[str, hashes.HashAlgorithm]] = {
    256: ("ecdsa-sha256", hashes.SHA256()),
    384: ("ecdsa-sha384", hashes.SHA384()),
    521: ("ecdsa-sha512", hashes.SHA512()),
}


def load_key(path: Path, passphrase: str | None = None) -> PrivateKey:
    data = path.expanduser().read_bytes()
    pw = passphrase.encode() if passphrase else None
    key: object
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, pw)
        else:
            key = serialization.load_pem_private_key(data, pw)
    except (ValueError, TypeError) as e:
        raise ImgapiError("InvalidKey", f"{path}: cannot load the private key: {e}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ImgapiError("InvalidKey", f"{path}: unsupported key type {type(key).__name__}")
    return key


class SignatureAuth(httpx.Auth):
    def __init__(self, user: str, key: PrivateKey) -> None:
        self.user = user
        self.key = key

    def sign(self, date: str) -> str:
        data = f"date: {date}".encode()
        key = self.key
        if isinstance(key, rsa.RSAPrivateKey):
            algorithm, sig = "rsa-sha256", key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            algorithm, h = _EC_HASHES.get(key.curve.key_size, _EC_HASHES[256])
            sig = key.sign(data, ec.ECDSA(h))
        else:
            algorithm, sig = "ed25519", key.sign(data)
        b64 = base64.b64encode(sig).decode()
        return f'Signature keyId="{self.user}",algorithm="{algorithm}",signature="{b64}"'

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        date = formatdate(usegmt=True)
        request.headers["Date"] = date
        request.headers["Authorization"] = self.sign(date)
        yield request
