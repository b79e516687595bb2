"""Joyent's node IMGAPI client (sdc-clients, from npm), unmodified, against the real stack.

The client verifies Content-MD5 on downloads, echoes ETags in If-Match, follows ListImages markers
and parses IMGAPI error bodies: if the gateway deviates from the REST contract, it fails.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.components import FIXTURES, missing
from tests.gateway.conftest import Stack, start_stack

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


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = start_stack(tmp_path, mode="dc")
    yield s
    s.stop()


def test_node_imgapi_client_full_lifecycle(node_client: Path, stack: Stack, tmp_path: Path) -> None:
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
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 19 steps passed" in proc.stdout, proc.stdout
