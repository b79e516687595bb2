"""Joyent's node IMGAPI client (sdc-clients, from npm), unmodified, against the real stack.

The client verifies Content-MD5 on downloads, echoes ETags in If-Match, follows ListImages markers
and parses IMGAPI error bodies: if the gateway deviates from the REST contract, it fails. It runs in
each server mode, anonymous and with HTTP Signature auth, on the embedded and the production shape;
every stack holds more than 1000 images so that the client's marker loop really pages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid as uuidlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.components import FIXTURES, Shape, missing
from tests.gateway.conftest import SDC, start_stack

#: Seeded active images: with the client's own image, more than one page of 1000.
SEEDED = 1100
OWNER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"

NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="module")
def node_client() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("node/npm", "the node IMGAPI client needs node and npm on PATH")
    modules = NODE_DIR / "node_modules" / "sdc-clients"
    lock = NODE_DIR / "package-lock.json"
    stamp = NODE_DIR / "node_modules" / ".installed"
    if not modules.exists() or not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        # --ignore-scripts: dtrace-provider's native build is optional for the client.
        proc = subprocess.run(
            [str(npm), "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            missing("sdc-clients from npm", f"npm ci failed: {proc.stderr[-2000:]}")
        stamp.touch()
    return NODE_DIR / "imgapi_smoke.js"


def seed_records(mode: str, n: int) -> list[dict[str, object]]:
    """``n`` active images in stored form (one published_at each, so pages have a stable order)."""
    return [
        {
            "v": 2,
            "uuid": str(uuidlib.uuid4()),
            "name": f"seed-{i}",
            "version": "1.0.0",
            "owner": OWNER,
            "public": mode != "private",
            "activated": True,
            "disabled": False,
            "state": "active",
            "os": "smartos",
            "type": "zone-dataset",
            "published_at": f"2020-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i // 3600:03d}Z",
            "files": [{"stor": "local", "sha1": "0" * 40, "size": 1, "compression": "none"}],
        }
        for i in range(n)
    ]


CASES = [
    ("dc", "none", "embedded"),
    ("dc", "none", "production"),
    ("public", "signature", "embedded"),
    ("public", "none", "production"),
    ("private", "none", "embedded"),
    ("private", "signature", "production"),
]


@pytest.mark.parametrize(("mode", "auth", "shape"), CASES, ids=["-".join(c) for c in CASES])
def test_node_imgapi_client_full_lifecycle(
    node_client: Path, request: pytest.FixtureRequest, tmp_path: Path, mode: str, auth: str, shape: str
) -> None:
    cfg: dict[str, object] = {"mode": mode, "listed": SEEDED + 1}
    settings: dict[str, Any] = {}
    if auth == "signature":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = tmp_path / "alice.pem"
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        settings = {"auth_type": "signature", "auth_keys": {"alice": [public.decode()]}}
        cfg.update(user="alice", keyFile=str(pem))
    (tmp_path / "stack").mkdir()
    stack = start_stack(
        tmp_path / "stack",
        mode=mode,
        admin_uuid=SDC if mode == "dc" else None,
        shape=Shape.of(request, shape),
        **settings,
    )
    try:
        stack.catalog.store_many(seed_records(mode, SEEDED))
        proc = subprocess.run(
            [
                "node",
                str(node_client),
                stack.base_url,
                str(FIXTURES / "what_a_piece_of_junk.zfs.bz2"),
                str(FIXTURES / "icon.jpg"),
                str(tmp_path / "download.bin"),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "IMGAPI_SMOKE": json.dumps(cfg)},
        )
    finally:
        stack.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 20 steps passed" in proc.stdout, proc.stdout
