"""Image files through pipes, with the real ``imgapi`` command in a subprocess: ``download -o -``
writes the verified bytes to stdout (messages on stderr), ``upload U -`` / ``create -f -`` read a pipe
(streamed, not resumable: an interruption says so, exit 3) or a redirected file (resumable, as a file)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from imgapi_cli.transfer import ABORT_ENV
from tests.cli.conftest import LUKE, Cli

IMGAPI = str(Path(sys.executable).with_name("imgapi"))
DATA = os.urandom(3 * 1024 * 1024 + 17)


def run(cli: Cli, *args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")},
        "IMGAPI_URL": cli.stack.base_url,
        "IMGAPI_CACHE_DIR": str(cli.cache),
        **kw.pop("env", {}),  # type: ignore[dict-item]
    }
    return subprocess.run([IMGAPI, *args], env=env, capture_output=True, timeout=120, **kw)  # type: ignore[call-overload, no-any-return]


def test_upload_from_a_pipe_and_download_to_stdout(cli: Cli) -> None:
    u = cli.create()["uuid"]
    up = run(cli, "upload", u, "-", "--compression", "gzip", "--no-progress", input=DATA)
    assert up.returncode == 0, up.stderr
    assert b"via PUT" in up.stderr
    img = cli.json("activate", u)
    assert img["files"][0]["sha1"] == hashlib.sha1(DATA).hexdigest() and img["files"][0]["size"] == len(DATA)

    down = run(cli, "download", u, "-o", "-", "--no-progress")
    assert down.returncode == 0, down.stderr
    assert down.stdout == DATA  # nothing but the file on stdout
    assert f"wrote {len(DATA)} bytes to stdout".encode() in down.stderr
    assert not Path("-").exists()

    down = run(cli, "download", u, "-o", "-", "-j")
    assert down.returncode == 0 and down.stdout == DATA and b'"sha1"' in down.stderr


def test_interrupted_pipes_say_they_cannot_resume(cli: Cli) -> None:
    u = cli.create()["uuid"]
    cut = {ABORT_ENV: str(1024 * 1024)}
    up = run(cli, "upload", u, "-", "--compression", "gzip", "--no-progress", input=DATA, env=cut)
    assert up.returncode == 3, up.stderr
    assert b"a pipe cannot be resumed" in up.stderr and b"Traceback" not in up.stderr
    assert len(up.stderr.decode().strip().splitlines()) == 1  # one line

    assert run(cli, "upload", u, "-", "--compression", "gzip", "--no-progress", input=DATA).returncode == 0
    cli("activate", u)
    down = run(cli, "download", u, "-o", "-", "--no-progress", env=cut)
    assert down.returncode == 3, down.stderr
    assert b"a pipe cannot be resumed" in down.stderr and b"-o FILE" in down.stderr
    assert DATA.startswith(down.stdout) and len(down.stdout) < len(DATA)


def test_pipe_needs_compression_and_a_redirected_file_is_a_file(cli: Cli, tmp_path: Path) -> None:
    u = cli.create()["uuid"]
    r = run(cli, "upload", u, "-", input=DATA)
    assert r.returncode == 2 and b"--compression" in r.stderr
    src = tmp_path / "disk.zfs.gz"
    src.write_bytes(DATA)
    with src.open("rb") as stdin:
        r = run(cli, "upload", u, "-", "--no-progress", stdin=stdin)
    assert r.returncode == 0, r.stderr
    assert b"via tus" in r.stderr and b"compression gzip" in r.stderr  # resumable, like any file


def test_create_with_file_from_stdin(cli: Cli) -> None:
    name = f"stdin-{os.urandom(4).hex()}"
    r = run(
        cli,
        *("-j", "-a", LUKE, "create", "--name", name, "--version", "1"),
        *("--type", "zone-dataset", "--os", "smartos"),
        *("-f", "-", "--compression", "none", "--activate", "--no-progress"),
        input=DATA,
    )
    assert r.returncode == 0, r.stderr
    assert cli.json("get", f"{name}@1")["files"][0]["sha1"] == hashlib.sha1(DATA).hexdigest()
