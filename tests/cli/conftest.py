"""The ``imgapi`` CLI against real stacks (catalog + blob gRPC servers + the gateway under uvicorn),
started with the gateway tests' helper (tests/gateway/conftest.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from imgapi_cli.main import app
from tests.gateway.conftest import PUBLIC_CHANNELS, Stack, start_stack

LUKE = "91ba0e64-2547-11e2-a972-df579e5fddb3"
VADER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
EMPEROR = "a0b6b534-2547-11e2-b758-63a2afd747d1"


@dataclass
class Cli:
    """Runs ``imgapi`` in-process (CliRunner) against one stack, with a private cache directory."""

    stack: Stack
    cache: Path

    def __call__(self, *args: str, env: dict[str, str] | None = None, code: int | None = 0) -> Result:
        runner = CliRunner()
        full_env = {"IMGAPI_URL": self.stack.base_url, "IMGAPI_CACHE_DIR": str(self.cache), **(env or {})}
        result = runner.invoke(app, list(args), env=full_env, catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, (
                f"imgapi {' '.join(args)} -> {result.exit_code}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}"
            )
        return result

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self(*args, env=env).stdout)

    def create(self, account: str = LUKE, **fields: str) -> dict[str, Any]:
        """A fresh unactivated image (unique name) created through the CLI."""
        args = ["--account", account, "create"]
        merged = {"name": f"cli-{uuid.uuid4().hex[:12]}", "version": "1.0.0", "type": "zone-dataset"}
        merged.update({"os": "smartos", **fields})
        for k, v in merged.items():
            args += [f"--{k}", v]
        image: dict[str, Any] = self.json(*args)
        return image


@pytest.fixture(scope="session")
def cli_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """dc mode, no channels, auth none, nothing seeded (tests use unique names)."""
    stack = start_stack(tmp_path_factory.mktemp("cli-dc"), mode="dc")
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def cli_public_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """public mode with channels dev (default) / staging / release."""
    stack = start_stack(
        tmp_path_factory.mktemp("cli-public"), mode="public", channels=PUBLIC_CHANNELS, admin_uuid=None
    )
    yield stack
    stack.stop()


@pytest.fixture()
def cli(cli_stack: Stack, tmp_path: Path) -> Cli:
    return Cli(cli_stack, tmp_path / "cache")


@pytest.fixture()
def pub_cli(cli_public_stack: Stack, tmp_path: Path) -> Cli:
    return Cli(cli_public_stack, tmp_path / "cache")
