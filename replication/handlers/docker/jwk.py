"""One JWS signature of a Docker schema 1 manifest checked against the JWK of its header (EC P-256/
384/521 or RSA). Imported when a schema 1 manifest arrives (replication/handlers/docker/schema1.py),
so a service that never sees one never loads cryptography."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from imgapi_common.errors import ImgapiError

_CURVES: dict[str, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    "P-256": (ec.SECP256R1(), hashes.SHA256()),
    "P-384": (ec.SECP384R1(), hashes.SHA384()),
    "P-521": (ec.SECP521R1(), hashes.SHA512()),
}
_RSA_HASHES: dict[str, hashes.HashAlgorithm] = {
    "RS256": hashes.SHA256(),
    "RS384": hashes.SHA384(),
    "RS512": hashes.SHA512(),
}


def _int(text: str) -> int:
    """A JWK number (unpadded base64url, big-endian)."""
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def verify_with_jwk(jwk: dict[str, Any], alg: str, signature: bytes, signing_input: bytes) -> None:
    """Raises ``InternalError`` when the signature does not verify or its algorithm is unsupported."""
    try:
        if jwk.get("kty") == "EC" and alg.startswith("ES"):
            curve, digest = _CURVES[str(jwk.get("crv"))]
            key = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), curve).public_key()
            half = len(signature) // 2
            der = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(digest))
        elif jwk.get("kty") == "RSA" and alg in _RSA_HASHES:
            pub = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
            pub.verify(signature, signing_input, padding.PKCS1v15(), _RSA_HASHES[alg])
        else:
            raise ImgapiError("InternalError", f"unsupported manifest signature (alg {alg})")
    except (InvalidSignature, KeyError, ValueError) as e:
        raise ImgapiError("InternalError", f"invalid manifest signature: {e or type(e).__name__}") from None
