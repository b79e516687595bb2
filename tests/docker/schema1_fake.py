"""Signed schema 1 manifests for the fake registry (JWS with an EC P-256 key, as libtrust signs)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.docker.fake_registry import FakeRepo, sha
from tests.docker.oci import CREATED, tar_bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(manifest: dict[str, Any]) -> bytes:
    """The manifest's text with a ``signatures`` member added (the signed payload is the text
    without it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    nums = key.public_key().public_numbers()
    payload = json.dumps(manifest, indent=3).encode()
    length, tail = len(payload) - 2, payload[-2:]
    protected = _b64(json.dumps({"formatLength": length, "formatTail": _b64(tail), "time": CREATED}).encode())
    der = key.sign(f"{protected}.{_b64(payload)}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = {
        "header": {
            "jwk": {"crv": "P-256", "kty": "EC", "x": _b64(nums.x.to_bytes(32, "big")), "y": _b64(nums.y.to_bytes(32, "big"))},
            "alg": "ES256",
        },
        "signature": _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        "protected": protected,
    }  # fmt: skip
    return payload[:length] + b',\n   "signatures": [' + json.dumps(signature).encode() + b"]\n}"


def schema1_repo(text: str, signed: bool = True) -> FakeRepo:
    """One ADD layer then an empty CMD step; fsLayers newest first."""
    layer = gzip.compress(tar_bytes({f"{text}.txt": text.encode()}), mtime=0)
    empty = gzip.compress(tar_bytes({}), mtime=0)
    base_v1 = {
        "id": "a" * 64,
        "created": CREATED,
        "container_config": {"Cmd": ["/bin/sh", "-c", f"#(nop) ADD file:{text} in / "]},
    }
    top_v1 = {
        "id": "b" * 64, "parent": "a" * 64, "created": CREATED, "os": "linux", "architecture": "amd64",
        "config": {"Cmd": ["/bin/sh"]}, "container_config": {"Cmd": ["/bin/sh", "-c", '#(nop)  CMD ["/bin/sh"]']},
    }  # fmt: skip
    manifest = {
        "schemaVersion": 1,
        "name": "fake/old",
        "tag": "v1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": sha(empty)}, {"blobSum": sha(layer)}],
        "history": [{"v1Compatibility": json.dumps(top_v1)}, {"v1Compatibility": json.dumps(base_v1)}],
    }
    body = sign(manifest) if signed else json.dumps(manifest, indent=3).encode()
    return FakeRepo(body, {sha(layer): layer, sha(empty): empty}, sha(layer), "schema1")
