"""A small Docker token server for the token-auth registry (RT): ``GET /token`` answers
``{"token": <JWT>}`` (RS256, ``x5c`` = a self-signed certificate the registry trusts).

Basic credentials are checked (401 ``{"details": "incorrect username or password"}`` on a
mismatch); the right user gets pull and push everywhere, anonymous callers pull on ``pub/`` only.
Every request's query and ``Authorization`` are recorded."""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.docker.loopback import serve

SERVICE = "test-registry"
ISSUER = "test-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    port: int
    cert_file: Path
    requests: list[tuple[list[tuple[str, str]], str | None]] = field(default_factory=list)
    stop: Callable[[], None] = lambda: None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def registry_auth_yaml(self) -> str:
        return (
            f"auth:\n  token:\n    realm: {self.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {self.cert_file}\n"
        )


def start_token_server(tmp: Path, user: str, password: str) -> TokenServer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token-issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    tmp.mkdir(parents=True, exist_ok=True)
    cert_file = tmp / "token-cert.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    good = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    server_box: list[TokenServer] = []

    def token(subject: str, access: list[dict[str, Any]]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
        t = int(time.time())
        claims = {
            "iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": t + 600, "nbf": t - 10, "iat": t,
            "jti": str(uuid.uuid4()), "access": access,
        }  # fmt: skip
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64(sig)}"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            query = parse_qsl(urlsplit(self.path).query)
            auth = self.headers.get("Authorization")
            server_box[0].requests.append((query, auth))
            if auth is not None and auth != good:
                self._answer(401, {"details": "incorrect username or password"})
                return
            access = []
            for k, v in query:
                if k != "scope":
                    continue
                kind, repo, actions = v.split(":", 2)
                wanted = actions.split(",")
                if auth is None:
                    wanted = [a for a in wanted if a == "pull"] if repo.startswith("pub/") else []
                access.append({"type": kind, "name": repo, "actions": wanted})
            self._answer(200, {"token": token(user if auth else "", access)})

    port, stop = serve(Handler, "token-server")
    ts = TokenServer(port, cert_file, stop=stop)
    server_box.append(ts)
    return ts
