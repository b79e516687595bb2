"""Signing with a key held by ``ssh-agent`` (``SSH_AUTH_SOCK``), as ``sdc-imgadm`` users do.

Only the two requests of the agent protocol (draft-miller-ssh-agent) that signing needs:
``REQUEST_IDENTITIES`` (list the keys) and ``SIGN_REQUEST`` (RSA with ``rsa-sha2-256``). Keys are
chosen by fingerprint, in either of OpenSSH's notations: ``SHA256:<base64>`` (``ssh-keygen -l``) or
the MD5 ``aa:bb:...`` form (``ssh-keygen -l -E md5``, what Triton's ``keyId`` shows).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from imgapi_cli.client import CliError

_REQUEST_IDENTITIES = 11
_IDENTITIES_ANSWER = 12
_SIGN_REQUEST = 13
_SIGN_RESPONSE = 14
_RSA_SHA2_256 = 2


def fingerprints(blob: bytes) -> tuple[str, str]:
    """(``SHA256:...``, ``aa:bb:...``) of an SSH public key blob."""
    sha = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    md5 = ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())
    return sha, md5


def matches(fingerprint: str, blob: bytes) -> bool:
    sha, md5 = fingerprints(blob)
    fp = fingerprint.strip()
    return fp == sha or fp.lower().removeprefix("md5:") == md5


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def uint32(self) -> int:
        (n,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        return int(n)

    def string(self) -> bytes:
        n = self.uint32()
        out = self.data[self.pos : self.pos + n]
        if len(out) != n:
            raise CliError("AgentError", "truncated message from ssh-agent")
        self.pos += n
        return out


def _string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


@dataclass(frozen=True)
class AgentKey:
    blob: bytes
    comment: str

    @property
    def key_type(self) -> str:
        return _Reader(self.blob).string().decode()


class Agent:
    def __init__(self, path: str | None = None) -> None:
        self.path = path or os.environ.get("SSH_AUTH_SOCK", "")
        if not self.path:
            raise CliError("AgentError", "no ssh-agent: SSH_AUTH_SOCK is not set")

    def _request(self, payload: bytes) -> _Reader:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(30)
                s.connect(self.path)
                s.sendall(struct.pack(">I", len(payload)) + payload)
                head = s.recv(4, socket.MSG_WAITALL)
                if len(head) != 4:
                    raise CliError("AgentError", "ssh-agent closed the connection")
                (n,) = struct.unpack(">I", head)
                body = b""
                while len(body) < n:
                    chunk = s.recv(n - len(body))
                    if not chunk:
                        raise CliError("AgentError", "ssh-agent closed the connection")
                    body += chunk
        except OSError as e:
            raise CliError("AgentError", f"ssh-agent at {self.path}: {e}") from None
        return _Reader(body)

    def keys(self) -> list[AgentKey]:
        r = self._request(bytes([_REQUEST_IDENTITIES]))
        if r.data[:1] != bytes([_IDENTITIES_ANSWER]):
            raise CliError("AgentError", "ssh-agent refused to list its keys")
        r.pos = 1
        return [AgentKey(r.string(), r.string().decode(errors="replace")) for _ in range(r.uint32())]

    def find(self, fingerprint: str) -> AgentKey:
        keys = self.keys()
        for k in keys:
            if matches(fingerprint, k.blob):
                return k
        held = ", ".join(fingerprints(k.blob)[0] for k in keys) or "none"
        raise CliError("KeyNotFound", f"ssh-agent holds no key {fingerprint} (it holds: {held})")

    def sign(self, key: AgentKey, data: bytes) -> tuple[str, bytes]:
        """(HTTP Signature algorithm, signature bytes as the gateway verifies them)."""
        kind = key.key_type
        flags = _RSA_SHA2_256 if kind == "ssh-rsa" else 0
        r = self._request(
            bytes([_SIGN_REQUEST]) + _string(key.blob) + _string(data) + struct.pack(">I", flags)
        )
        if r.data[:1] != bytes([_SIGN_RESPONSE]):
            raise CliError("AgentError", f"ssh-agent refused to sign with {fingerprints(key.blob)[0]}")
        r.pos = 1
        sig = _Reader(r.string())
        alg, raw = sig.string().decode(), sig.string()
        if alg == "rsa-sha2-256":
            return "rsa-sha256", raw
        if alg == "ssh-ed25519":
            return "ed25519", raw
        if alg.startswith("ecdsa-sha2-nistp"):
            parts = _Reader(raw)
            r_int = int.from_bytes(parts.string(), "big")
            s_int = int.from_bytes(parts.string(), "big")
            name = {"256": "ecdsa-sha256", "384": "ecdsa-sha384", "521": "ecdsa-sha512"}
            return name[alg.removeprefix("ecdsa-sha2-nistp")], encode_dss_signature(r_int, s_int)
        raise CliError("AgentError", f"unsupported signature algorithm from ssh-agent: {alg}")
