"""HTTP Signature authentication (with ``authType signature``) and the key store behind it.

``Authorization: Signature keyId="<user>",algorithm="<alg>"[,headers="<list>"],signature="<b64>"``.
The key id is the user name; the signature must verify against any of that user's SSH keys.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from email.utils import parsedate_to_datetime
from enum import Enum
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from starlette.requests import Request

from gateway.settings import GatewaySettings
from imgapi_common.errors import ImgapiError

log = logging.getLogger("gateway.http.auth")

PublicKey = rsa.RSAPublicKey | dsa.DSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class AuthMode(Enum):
    """Per-route authentication: strict (a valid signature required), passive (anonymous allowed, a
    bad signature refused) or none."""

    STRICT = "strict"
    PASSIVE = "passive"
    NONE = "none"


def unauthorized(message: str = "Unauthorized") -> ImgapiError:
    return ImgapiError("UnauthorizedError", message)


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
#: key type -> accepted hash names (None for ed25519, which has no separate hash).
_ALGORITHMS: dict[str, tuple[type, frozenset[str]]] = {
    "rsa": (rsa.RSAPublicKey, frozenset({"sha1", "sha256", "sha512"})),
    "dsa": (dsa.DSAPublicKey, frozenset({"sha1", "sha256"})),
    "ecdsa": (ec.EllipticCurvePublicKey, frozenset({"sha256", "sha384", "sha512"})),
}


class KeyStore:
    """username -> SSH public keys, from settings and ``<user>.keys`` files; reloadable."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._keys: dict[str, list[PublicKey]] = {}
        self.loaded_at: float = 0.0

    def keys_for(self, user: str) -> list[PublicKey]:
        return self._keys.get(user, [])

    @property
    def users(self) -> list[str]:
        return sorted(self._keys)

    def reload(self) -> None:
        keys: dict[str, list[PublicKey]] = {}
        for user, lines in self._settings.auth_keys.items():
            for line in lines:
                _add_key(keys, user, line, "config")
        d = self._settings.auth_keys_dir
        if d:
            for f in sorted(Path(d).glob("*.keys")):
                try:
                    text = f.read_text("utf-8")
                except OSError as e:
                    log.warning("cannot read %s: %s", f, e)
                    continue
                for line in text.splitlines():
                    line = line.strip()
                    if line and not line.startswith("#"):
                        _add_key(keys, f.name[: -len(".keys")], line, str(f))
        with self._lock:
            self._keys = keys
            self.loaded_at = time.time()


def _add_key(keys: dict[str, list[PublicKey]], user: str, line: str, source: str) -> None:
    try:
        key = load_ssh_public_key(line.strip().encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm) as e:
        log.warning("ignoring an unusable key of %r (%s): %s", user, source, e)
        return
    if not isinstance(key, PublicKey):
        log.warning("ignoring an unsupported key type of %r (%s)", user, source)
        return
    keys.setdefault(user, []).append(key)


_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*(?:,|$)')


def parse_authorization(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "signature":
        raise unauthorized(f"{scheme or 'empty'} scheme is not supported (expected Signature)")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None:
            raise unauthorized(f"bad param format at position {pos} of the Authorization header")
        params[m[1]] = m[2]
        pos = m.end()
    for required in ("keyId", "algorithm", "signature"):
        if not params.get(required):
            raise unauthorized(f"{required} was not specified")
    return params


def signing_string(request: Request, header_names: list[str]) -> str:
    lines = []
    for name in header_names:
        if name == "request-line":
            path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
            q = request.url.query
            target = f"{path}?{q}" if q else path
            version = request.scope.get("http_version", "1.1")
            lines.append(f"{request.method} {target} HTTP/{version}")
        elif name == "(request-target)":
            path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
            q = request.url.query
            lines.append(f"(request-target): {request.method.lower()} {path}{'?' + q if q else ''}")
        else:
            v = request.headers.get(name)
            if v is None:
                raise unauthorized(f"{name} was not in the request")
            lines.append(f"{name}: {v}")
    return "\n".join(lines)


def _verify_one(key: PublicKey, key_type: str, hash_name: str, sig: bytes, data: bytes) -> bool:
    try:
        if key_type == "ed25519":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False
            key.verify(sig, data)
            return True
        expected_type, _ = _ALGORITHMS[key_type]
        if not isinstance(key, expected_type):
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


#: The signed headers that can carry the request time (``x-date`` for clients that cannot set Date).
DATE_HEADERS = ("date", "x-date")


def _check_date(request: Request, header_names: list[str], skew: int) -> None:
    """The request time must be signed, and every signed time within ``skew`` seconds of ours.

    Only signed values count: an unsigned ``Date`` says nothing about when the signature was made,
    so a signature over other headers only could be replayed forever."""
    signed = [name for name in DATE_HEADERS if name in header_names]
    if not signed:
        raise unauthorized('the signature must cover the "date" or "x-date" header')
    now = time.time()
    for name in signed:
        value = request.headers.get(name, "")
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError):
            raise unauthorized(f"invalid {name} header: {value}") from None
        if abs(now - when) > skew:
            raise unauthorized(f"clock skew of {int(abs(now - when))}s was greater than {skew}s")


def verify_request(request: Request, store: KeyStore, skew: int) -> str:
    """The authenticated user name, or 401 ``UnauthorizedError``."""
    header = request.headers.get("authorization", "")
    params = parse_authorization(header)
    algorithm = params["algorithm"].lower()
    key_type, _, hash_name = algorithm.partition("-")
    if key_type == "hmac":
        raise unauthorized(f"{params['algorithm']} is not a supported algorithm")
    if key_type == "ed25519" and hash_name in ("", "sha512"):
        pass
    elif key_type not in _ALGORITHMS or hash_name not in _ALGORITHMS[key_type][1]:
        raise unauthorized(f"{params['algorithm']} is not a supported algorithm")
    header_names = params.get("headers", "date").lower().split()
    data = signing_string(request, header_names).encode("utf-8")
    _check_date(request, header_names, skew)
    try:
        sig = base64.b64decode(params["signature"], validate=True)
    except ValueError:
        raise unauthorized("signature is not valid base64") from None
    user = params["keyId"]
    for key in store.keys_for(user):
        if _verify_one(key, key_type, hash_name, sig, data):
            return user
    raise unauthorized()


def authenticate(
    request: Request, mode: AuthMode, settings: GatewaySettings, store: KeyStore | None
) -> str | None:
    """Apply a route's auth mode; returns the remote user (None = anonymous)."""
    if settings.auth_type == "none" or mode is AuthMode.NONE or store is None:
        return None
    if "authorization" not in request.headers:
        if mode is AuthMode.STRICT:
            raise unauthorized()
        return None
    return verify_request(request, store, settings.auth_clock_skew_seconds)
