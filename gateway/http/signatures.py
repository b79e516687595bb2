"""The cryptography half of HTTP Signature auth (gateway/http/auth.py): SSH public keys and the
verification of one signature. Imported when the first key is loaded: a gateway without
``authType signature`` keys never loads cryptography (~8 MiB resident)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

PublicKey = rsa.RSAPublicKey | dsa.DSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_KEY_CLASSES: dict[str, type] = {
    "rsa": rsa.RSAPublicKey,
    "dsa": dsa.DSAPublicKey,
    "ecdsa": ec.EllipticCurvePublicKey,
}


class UnusableKey(ValueError):
    """A key line that is not an SSH public key of a supported type."""


def load_key(line: str) -> PublicKey:
    try:
        key = load_ssh_public_key(line.strip().encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm) as e:
        raise UnusableKey(f"unusable: {e}") from None
    if not isinstance(key, PublicKey):
        raise UnusableKey("unsupported key type")
    return key


def verify(key: PublicKey, key_type: str, hash_name: str, sig: bytes, data: bytes) -> bool:
    """Whether ``sig`` is ``key``'s signature of ``data`` with the request's algorithm (``key_type``
    and ``hash_name``, already checked against the accepted pairs)."""
    try:
        if key_type == "ed25519":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False
            key.verify(sig, data)
            return True
        if not isinstance(key, _KEY_CLASSES[key_type]):
            return False
        h = _HASHES[hash_name]()
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), h)
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(sig, data, h)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, data, ec.ECDSA(h))
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False
