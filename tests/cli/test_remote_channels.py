"""import-remote (job polling) and channels through the ``imgapi`` CLI."""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.gateway.conftest import Stack, start_stack
from tests.gateway.test_import import BAD_FILE, LEVEL2, FakeImgapi

ZERO = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def remote() -> Iterator[FakeImgapi]:
    fake = FakeImgapi()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def import_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("cli-import"), mode="dc", remote_allowlist=["127.0.0.0/8"])
    yield s
    s.stop()


def test_import_remote_waits_for_the_job(import_stack: Stack, remote: FakeImgapi, tmp_path: Path) -> None:
    cli = Cli(import_stack, tmp_path)
    r = cli("import-remote", LEVEL2, "--source", remote.url, "--interval", "0.1")
    img = json.loads(r.stdout)
    assert img["uuid"] == LEVEL2 and img["state"] == "active"
    assert img["files"][0]["sha1"] == remote.manifests[LEVEL2]["files"][0]["sha1"]
    origin = remote.manifests[LEVEL2]["origin"]
    assert cli.json("get", origin)["state"] == "active"  # the missing origin came along

    r = cli("import-remote", LEVEL2, "--source", remote.url, code=1)
    assert "ImageUuidAlreadyExists" in r.stderr


def test_import_remote_failed_job(import_stack: Stack, remote: FakeImgapi, tmp_path: Path) -> None:
    cli = Cli(import_stack, tmp_path)
    r = cli("import-remote", BAD_FILE, "--source", remote.url, "--interval", "0.1", code=1)
    assert "JobFailed" in r.stderr and "failed" in r.stderr
    assert "ResourceNotFound" in cli("get", BAD_FILE, code=1).stderr  # rolled back


def test_import_remote_no_wait(import_stack: Stack, remote: FakeImgapi, tmp_path: Path) -> None:
    cli = Cli(import_stack, tmp_path)
    target = sorted(set(remote.manifests) - {LEVEL2, BAD_FILE})[0]
    out = cli.json("import-remote", target, "--source", remote.url, "--no-wait")
    assert out["image_uuid"] == target and out["workflow_api"].startswith("http://")
    r = cli("--account", ZERO, "import-remote", str(uuidlib.uuid4()), "--source", remote.url, code=1)
    assert "OperatorOnly" in r.stderr


def test_channels(pub_cli: Cli) -> None:
    listed = pub_cli.json("channels", "list", "--json")
    assert [c["name"] for c in listed] == ["dev", "staging", "release"]
    assert "all development builds" in pub_cli("channels", "list").stdout

    made = pub_cli.json(
        "--account",
        ZERO,
        "create",
        "--name",
        f"ch-{uuidlib.uuid4().hex[:8]}",
        "--version",
        "1",
        "--type",
        "zone-dataset",
        "--os",
        "smartos",
        "--public",
    )
    u = made["uuid"]
    assert made["channels"] == ["dev"]
    r = pub_cli("--channel", "staging", "get", u, code=1)
    assert "ResourceNotFound" in r.stderr
    assert pub_cli.json("channels", "add-image", u, "staging")["channels"] == ["dev", "staging"]
    assert pub_cli.json("--channel", "staging", "get", u)["uuid"] == u
    r = pub_cli("channels", "add-image", u, "nope", code=1)
    assert "ValidationFailed" in r.stderr and "unknown channel" in r.stderr

    # Delete from one channel only, then everywhere.
    pub_cli("--channel", "staging", "delete", u)
    assert pub_cli.json("get", u)["channels"] == ["dev"]
    pub_cli("delete", u)
    assert "ResourceNotFound" in pub_cli("get", u, code=1).stderr
