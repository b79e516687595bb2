"""Resumable uploads (tus, interrupted then resumed from the server's offset), the plain PUT
fallback, resumable downloads (Range), and digest verification, through the ``imgapi`` CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest

from imgapi_cli.client import Client, CliError
from imgapi_cli.downloads import download
from imgapi_cli.transfer import ABORT_ENV
from imgapi_cli.uploads import tus_supported, upload
from tests.cli.conftest import Cli

MiB = 1024 * 1024
DATA = os.urandom(3 * MiB + 4321)
SHA1 = hashlib.sha1(DATA).hexdigest()
MD5 = base64.b64encode(hashlib.md5(DATA).digest()).decode()
CHUNK = 256 * 1024


def state_files(cli: Cli) -> list[Path]:
    return sorted((cli.cache / "uploads").glob("*.json")) if (cli.cache / "uploads").exists() else []


def server_offset(cli: Cli, location: str) -> int:
    with httpx.Client(base_url=cli.stack.base_url) as c:
        r = c.head(location, headers={"Tus-Resumable": "1.0.0"})
        assert r.status_code == 200, r.text
        return int(r.headers["upload-offset"])


def fetch(cli: Cli, uuid: str) -> httpx.Response:
    with httpx.Client(base_url=cli.stack.base_url) as c:
        return c.get(f"/images/{uuid}/file")


def test_tus_upload_interrupted_then_resumed(cli: Cli, tmp_path: Path) -> None:
    u = cli.create()["uuid"]
    src = tmp_path / "image.zfs.gz"
    src.write_bytes(DATA)
    args = ("upload", u, str(src), "--chunk-size", str(CHUNK), "--no-progress")

    r = cli(*args, env={ABORT_ENV: str(MiB + 1000)}, code=3)
    assert "Interrupted" in r.stderr and "run the same command again to resume" in r.stderr
    [state_path] = state_files(cli)
    state = json.loads(state_path.read_text())
    assert state["sha1"] == SHA1 and state["compression"] == "gzip"
    offset = server_offset(cli, state["location"])
    # Checksummed chunks: the chunk cut mid-body was discarded, the four before it are kept.
    assert offset == 4 * CHUNK
    assert cli.json("get", u)["files"] == []

    # A second interruption: the state file is reused, the server's offset only grows.
    cli(*args, env={ABORT_ENV: str(CHUNK + 10)}, code=3)
    assert state_files(cli) == [state_path]
    offset2 = server_offset(cli, state["location"])
    assert offset2 == offset + CHUNK

    out = json.loads(cli(*args, "--json").stdout)
    assert out["method"] == "tus"
    assert out["resumed_from"] == offset2
    assert out["sent"] == len(DATA) - offset2  # only the rest went over the wire
    assert out["image"]["files"] == [{"sha1": SHA1, "size": len(DATA), "compression": "gzip"}]
    assert state_files(cli) == []
    r2 = fetch(cli, u)
    assert r2.content == DATA and r2.headers["content-md5"] == MD5


def test_tus_upload_resumes_after_restarted_client_with_known_offset(cli: Cli, tmp_path: Path) -> None:
    """The human-readable output tells where it resumed."""
    u = cli.create()["uuid"]
    src = tmp_path / "image.zfs.xz"
    src.write_bytes(DATA[: MiB + 17])
    args = ("upload", u, str(src), "--chunk-size", str(CHUNK))
    cli(*args, "--no-progress", env={ABORT_ENV: str(2 * CHUNK + 5)}, code=3)
    r = cli(*args)
    assert f"resuming upload at byte {2 * CHUNK} of {MiB + 17}" in r.stderr
    assert "via tus, resumed at byte" in r.stderr
    assert cli.json("get", u)["files"][0]["compression"] == "xz"


def test_changed_source_starts_a_new_upload(cli: Cli, tmp_path: Path) -> None:
    u = cli.create()["uuid"]
    src = tmp_path / "image.zfs"
    src.write_bytes(DATA[:MiB])
    cli(
        "upload",
        u,
        str(src),
        "--chunk-size",
        str(CHUNK),
        "--no-progress",
        env={ABORT_ENV: str(CHUNK * 2)},
        code=3,
    )
    src.write_bytes(DATA[MiB : 2 * MiB + 1])  # new content, new size: the old state does not apply
    out = json.loads(cli("upload", u, str(src), "--chunk-size", str(CHUNK), "--json").stdout)
    assert out["resumed_from"] == 0 and out["compression"] == "none"
    assert fetch(cli, u).content == DATA[MiB : 2 * MiB + 1]


def test_upload_sha1_mismatch_is_reported(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "f.bz2"
    src.write_bytes(DATA[:500_000])
    for method in ("tus", "put"):
        u = cli.create()["uuid"]
        r = cli("upload", u, str(src), "--method", method, "--sha1", "0" * 40, "--no-progress", code=1)
        assert "Download (HTTP 400)" in r.stderr and "sha1" in r.stderr
        assert state_files(cli) == []
        assert cli.json("get", u)["files"] == []


def test_upload_refused_on_activated_image(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "f.gz"
    src.write_bytes(b"abc")
    u = cli.create()["uuid"]
    cli("upload", u, str(src), "--no-progress")
    cli("activate", u)
    r = cli("upload", u, str(src), "--no-progress", code=1)
    assert "ImageFilesImmutable" in r.stderr


def test_download_interrupted_then_resumed_with_range(cli: Cli, tmp_path: Path) -> None:
    u = cli.create()["uuid"]
    src = tmp_path / "src.gz"
    src.write_bytes(DATA)
    cli("upload", u, str(src), "--method", "put", "--no-progress")
    dest = tmp_path / "out.gz"
    part = tmp_path / "out.gz.part"

    r = cli("download", u, "-o", str(dest), "--no-progress", env={ABORT_ENV: str(2 * MiB)}, code=3)
    assert "download interrupted" in r.stderr
    assert not dest.exists() and part.exists()
    assert 0 < part.stat().st_size <= 2 * MiB + 256 * 1024
    sidecar = json.loads((tmp_path / "out.gz.part.json").read_text())
    assert sidecar["content_md5"] == MD5 and sidecar["sha1"] == SHA1

    keep = 777_777  # truncate the partial file further: only the rest must be fetched
    with part.open("r+b") as f:
        f.truncate(keep)
    out = json.loads(cli("download", u, "-o", str(dest), "--json").stdout)
    assert out == {
        "path": str(dest),
        "size": len(DATA),
        "sha1": SHA1,
        "content_md5": MD5,
        "resumed_from": keep,
        "fetched": len(DATA) - keep,
    }
    assert dest.read_bytes() == DATA
    assert not part.exists() and not (tmp_path / "out.gz.part.json").exists()

    # Default name (in a directory given with -o) and human output.
    r = cli("download", u, "-o", str(tmp_path))
    assert (tmp_path / f"{u}-file.gz").read_bytes() == DATA
    assert "verified" in r.stderr


def test_download_detects_corrupt_partial_file(cli: Cli, tmp_path: Path) -> None:
    u = cli.create()["uuid"]
    src = tmp_path / "src"
    src.write_bytes(DATA)
    cli("upload", u, str(src), "--no-progress")
    dest = tmp_path / "out"
    part = tmp_path / "out.part"
    cli("download", u, "-o", str(dest), "--no-progress", env={ABORT_ENV: str(MiB)}, code=3)
    with part.open("r+b") as f:  # flip one byte of what was already downloaded
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    r = cli("download", u, "-o", str(dest), "--no-progress", code=1)
    assert "ChecksumError" in r.stderr and "Content-MD5" in r.stderr and "manifest sha1" in r.stderr
    assert not dest.exists() and not part.exists()
    out = json.loads(cli("download", u, "-o", str(dest), "--json").stdout)  # starts over, verified
    assert out["resumed_from"] == 0 and dest.read_bytes() == DATA


# --- servers without tus / Range (the original IMGAPI), and lying servers: mock transports ----------

UUID = "0c9d4f4e-0000-4000-8000-000000000001"


def image_json(data: bytes) -> dict[str, object]:
    sha1 = hashlib.sha1(data).hexdigest()
    return {
        "uuid": UUID,
        "state": "unactivated",
        "files": [{"sha1": sha1, "size": len(data), "compression": "none"}],
    }


def test_upload_falls_back_to_put_without_tus(tmp_path: Path) -> None:
    data = DATA[:300_000]
    seen: list[str] = []
    received = bytearray()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "OPTIONS":  # the original IMGAPI has no such route
            return httpx.Response(404, json={"code": "ResourceNotFound", "message": "does not exist"})
        assert request.method == "PUT" and request.url.path == f"/images/{UUID}/file"
        assert request.url.params["compression"] == "none"
        assert request.url.params["sha1"] == hashlib.sha1(data).hexdigest()
        assert request.headers["content-length"] == str(len(data))
        received.extend(request.read())
        return httpx.Response(200, json=image_json(bytes(received)))

    src = tmp_path / "plain.img"
    src.write_bytes(data)
    client = Client("http://imgapi.test", transport=httpx.MockTransport(handler))
    assert not tus_supported(client, UUID)
    result = upload(client, UUID, src, state_dir=tmp_path)
    assert result.method == "put" and bytes(received) == data
    assert seen == [f"OPTIONS /images/{UUID}/file/uploads"] * 2 + [f"PUT /images/{UUID}/file"]


def test_upload_detects_server_storing_other_bytes(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "OPTIONS":
            return httpx.Response(405)
        request.read()
        return httpx.Response(200, json=image_json(b"something else"))

    src = tmp_path / "x"
    src.write_bytes(b"payload")
    client = Client("http://imgapi.test", transport=httpx.MockTransport(handler))
    with pytest.raises(CliError) as exc:
        upload(client, UUID, src, state_dir=tmp_path)
    assert exc.value.code == "ChecksumError"


def download_server(data: bytes, md5: str | None, ranges: bool) -> tuple[httpx.MockTransport, list[str]]:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(f"{request.url.path} range={request.headers.get('range')}")
        if request.url.path == f"/images/{UUID}":
            return httpx.Response(200, json=image_json(data))
        rng = request.headers.get("range")
        if ranges and rng:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            return httpx.Response(
                206,
                content=data[start:],
                headers={"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"},
            )
        headers = {"Content-MD5": md5} if md5 else {}
        return httpx.Response(200, content=data, headers=headers)

    return httpx.MockTransport(handler), requests


def test_download_restarts_when_server_ignores_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = DATA[:200_000]
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    transport, requests = download_server(data, md5, ranges=False)
    client = Client("http://imgapi.test", transport=transport)
    dest = tmp_path / "f"
    monkeypatch.setenv(ABORT_ENV, "150000")
    with pytest.raises(CliError):
        download(client, UUID, dest)
    monkeypatch.delenv(ABORT_ENV)
    have = (tmp_path / "f.part").stat().st_size
    assert have > 0
    result = download(client, UUID, dest)
    assert dest.read_bytes() == data and result.resumed_from == 0 and result.fetched == len(data)
    assert requests[-1] == f"/images/{UUID}/file range=bytes={have}-"  # asked, got a 200: restarted


def test_download_detects_bad_content_md5(tmp_path: Path) -> None:
    data = DATA[:100_000]
    transport, _ = download_server(data, base64.b64encode(b"\0" * 16).decode(), ranges=True)
    client = Client("http://imgapi.test", transport=transport)
    with pytest.raises(CliError) as exc:
        download(client, UUID, tmp_path / "f")
    assert exc.value.code == "ChecksumError" and "Content-MD5" in exc.value.message
    assert not (tmp_path / "f").exists() and not (tmp_path / "f.part").exists()


def test_download_requires_content_md5(tmp_path: Path) -> None:
    transport, _ = download_server(DATA[:1000], None, ranges=True)
    client = Client("http://imgapi.test", transport=transport)
    with pytest.raises(CliError) as exc:
        download(client, UUID, tmp_path / "f")
    assert exc.value.code == "ChecksumError"
