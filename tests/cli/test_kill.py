"""A real crash: ``imgapi upload`` / ``imgapi download`` subprocesses killed with SIGKILL mid-transfer
(throttled with --limit-rate so the kill lands mid-way), then the same command resumes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.cli.conftest import Cli

MiB = 1024 * 1024
DATA = os.urandom(6 * MiB + 999)
SHA1 = hashlib.sha1(DATA).hexdigest()
MD5 = base64.b64encode(hashlib.md5(DATA).digest()).decode()
ROOT = Path(__file__).resolve().parents[2]


def spawn(cli: Cli, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IMGAPI_URL": cli.stack.base_url, "IMGAPI_CACHE_DIR": str(cli.cache)}
    env.pop("IMGAPI_CLI_TEST_ABORT_AFTER", None)
    return subprocess.Popen(
        [sys.executable, "-m", "imgapi_cli.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the transfer never got far enough"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def head_offset(cli: Cli, location: str) -> int:
    r = httpx.head(cli.stack.base_url + location, headers={"Tus-Resumable": "1.0.0"})
    assert r.status_code == 200, r.text
    return int(r.headers["upload-offset"])


def test_killed_upload_resumes_from_server_offset(cli: Cli, tmp_path: Path) -> None:
    u = cli.create()["uuid"]
    src = tmp_path / "big.zfs.gz"
    src.write_bytes(DATA)
    args = ("upload", u, str(src), "--chunk-size", str(512 * 1024), "--no-progress")
    uploads = cli.cache / "uploads"

    def far_enough() -> bool:
        states = list(uploads.glob("*.json")) if uploads.exists() else []
        if not states:
            return False
        location = json.loads(states[0].read_text()).get("location")
        return bool(location) and head_offset(cli, location) >= 2 * MiB

    kill_when(spawn(cli, *args, "--limit-rate", "4M"), far_enough)
    [state] = list(uploads.glob("*.json"))
    location = json.loads(state.read_text())["location"]
    cli.stack.wait_idle()  # the server has finished with the dropped connection
    offset = head_offset(cli, location)
    assert 2 * MiB <= offset < len(DATA)

    out = json.loads(cli(*args, "--json").stdout)
    assert out["resumed_from"] == offset and out["sent"] == len(DATA) - offset
    assert out["image"]["files"] == [{"sha1": SHA1, "size": len(DATA), "compression": "gzip"}]
    r = httpx.get(f"{cli.stack.base_url}/images/{u}/file")
    assert r.content == DATA and r.headers["content-md5"] == MD5


def test_killed_download_resumes_with_range(cli: Cli, tmp_path: Path) -> None:
    u = cli.create()["uuid"]
    src = tmp_path / "big"
    src.write_bytes(DATA)
    cli("upload", u, str(src), "--method", "put", "--no-progress")
    dest = tmp_path / "copy"
    part = tmp_path / "copy.part"
    proc = spawn(cli, "download", u, "-o", str(dest), "--limit-rate", "4M", "--no-progress")
    kill_when(proc, lambda: part.exists() and part.stat().st_size >= 2 * MiB)
    have = part.stat().st_size
    assert 2 * MiB <= have < len(DATA)
    out = json.loads(cli("download", u, "-o", str(dest), "--json").stdout)
    assert out["resumed_from"] == have and out["fetched"] == len(DATA) - have
    assert out["sha1"] == SHA1 and out["content_md5"] == MD5
    assert dest.read_bytes() == DATA
