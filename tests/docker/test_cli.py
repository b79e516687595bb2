"""``imgapi import-docker`` against a stack and R0."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from imgapi_cli.docker import split_reference
from imgapi_cli.main import app
from tests.docker.conftest import Registry0
from tests.docker.stack import Stack
from tests.docker.test_import import registry_manifest, uuids_of


def test_split_reference() -> None:
    assert split_reference("busybox") == ("busybox", "latest", "")
    assert split_reference("127.0.0.1:5000/a/b:v1") == ("127.0.0.1:5000/a/b", "v1", "")
    assert split_reference("127.0.0.1:5000/a/b") == ("127.0.0.1:5000/a/b", "latest", "")
    assert split_reference("q.io/a/b@sha256:00") == ("q.io/a/b", "", "sha256:00")


def test_import_docker_command(stack: Stack, r0: Registry0, tmp_path: object) -> None:
    runner = CliRunner()
    env = {"IMGAPI_URL": stack.url, "IMGAPI_CACHE_DIR": str(tmp_path)}
    result = runner.invoke(app, ["--json", "import-docker", f"{r0.host}/test/child:v2s2"], env=env)
    assert result.exit_code == 0, result.stderr
    head = json.loads(result.stdout)
    assert head["uuid"] == uuids_of(registry_manifest(r0.host, "test/child", "v2s2")[0])[-1]
    assert head["tags"]["docker:repo"] == f"{r0.host}/test/child"

    failed = runner.invoke(app, ["import-docker", "--no-progress", f"{r0.host}/test/child:nope"], env=env)
    assert failed.exit_code == 1
    assert "ResourceNotFound" in failed.stderr and "NotFoundError" in failed.stderr


def test_import_docker_with_progress_bars(stack: Stack, r0: Registry0, tmp_path: object) -> None:
    env = {"IMGAPI_URL": stack.url, "IMGAPI_CACHE_DIR": str(tmp_path), "COLUMNS": "120"}
    result = CliRunner().invoke(app, ["import-docker", f"{r0.host}/test/big:v1"], env=env)
    assert result.exit_code == 0, result.stderr
    assert "docker-layer" in result.stdout
