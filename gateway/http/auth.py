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
from typing import TYPE_CHECKING

from starlette.requests import Request

from gateway.settings import GatewaySettings
from imgapi_common.errors import ImgapiError

if TYPE_CHECKING:  # the key code (cryptography, ~8 MiB resident) loads with the first key
    from gateway.http.signatures import PublicKey

log = logging.getLogger("gateway.http.auth")


class AuthMode(Enum):
    """Per-route authentication: strict (a valid signature required), passive (anonymous allowed, a
    bad signature refused) or none."""

    STRICT = "strict"
    PASSIVE = "passive"
    NONE = "none"


def unauthorized(message: str = "Unauthorized") -> ImgapiError:
    return ImgapiError("UnauthorizedError", message)


#: key type -> accepted hash names (ed25519 has no separate hash).
_ALGORITHMS: dict[str, frozenset[str]] = {
    "rsa": frozenset({"sha1", "sha256", "sha512"}),
    "dsa": frozenset({"sha1", "sha256"}),
    "ecdsa": frozenset({"sha256", "sha384", "sha512"}),
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
    from gateway.http.signatures import UnusableKey, load_key

    try:
        key = load_key(line)
    except UnusableKey as e:
        log.warning("ignoring a key of %r (%s): %s", user, source, e)
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
    elif key_type not in _ALGORITHMS or hash_name not in _ALGORITHMS[key_type]:
        raise unauthorized(f"{params['algorithm']} is not a supported algorithm")
    header_names = params.get("headers", "date").lower().split()
    data = signing_string(request, header_names).encode("utf-8")
    _check_date(request, header_names, skew)
    try:
        sig = base64.b64decode(params["signature"], validate=True)
    except ValueError:
        raise unauthorized("signature is not valid base64") from None
    user = params["keyId"]
    keys = store.keys_for(user)
    if keys:
        from gateway.http.signatures import verify

        if any(verify(key, key_type, hash_name, sig, data) for key in keys):
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
