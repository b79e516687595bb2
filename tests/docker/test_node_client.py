"""The node IMGAPI client's ``adminImportDockerImage`` (sdc-clients, unmodified) reads the stream."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.compat.test_node_client import node_client as node_client  # the npm-installed client
from tests.docker.conftest import Registry0
from tests.docker.stack import Stack  # the module's stack, on each shape (tests/docker/conftest.py)


def run(script: Path, url: str, repo: str, tag: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    proc = subprocess.run(
        [node, str(script.parent / "docker_import.js"), url, repo, tag],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_node_client_import(node_client: Path, stack: Stack, r0: Registry0) -> None:
    got = run(node_client, stack.url, f"{r0.host}/test/child", "v2s2")
    assert got["statusCode"] == 200
    msgs = got["messages"]
    assert msgs[0]["payload"]["status"].startswith(f"v2s2: Pulling from {r0.host}/test/child (req ")
    assert msgs[-3]["type"] == "create-docker-image" and msgs[-3]["head"] is True
    assert msgs[-1]["payload"]["status"] == f"Status: Downloaded newer image for {r0.host}/test/child:v2s2"

    refused = run(node_client, stack.url, f"{r0.host}/Test/child", "v2s2")
    assert refused["error"] == {  # the client keeps the code and message of the error body
        "statusCode": 422,
        "body": {
            "code": "ValidationFailed",
            "message": "invalid repository namespace, may only contain [a-z0-9._-] characters: Test",
        },
    }
    missing = run(node_client, stack.url, f"{r0.host}/test/child", "nope")
    assert missing["messages"] == [
        {
            "type": "error",
            "id": f"{r0.host}/test/child",
            "error": {"code": "ResourceNotFound", "message": "NotFoundError"},
        }
    ]
