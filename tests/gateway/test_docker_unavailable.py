"""Without a replication service (no ``replication_target``) the gateway cannot reach a Docker
registry: AdminImportDockerImage and AdminPushDockerImage answer 501 ``NotAvailable``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.conftest import SDC, Stack, start_stack


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = start_stack(tmp_path, replication=False)
    yield s
    s.stop()


def test_docker_import_and_push_are_not_available(stack: Stack) -> None:
    assert not stack.settings.replication_target
    with stack.client() as c:
        r = c.post("/images?action=import-docker-image&repo=busybox&tag=latest")
        assert (r.status_code, r.json()["code"]) == (501, "NotAvailable"), r.text
        created = c.post(
            "/images",
            json={"name": "docker-layer", "version": "1", "os": "linux", "type": "docker", "owner": SDC},
        )
        assert created.status_code == 200, created.text
        r = c.post(f"/images/{created.json()['uuid']}/push?repoAndTag=127.0.0.1:1/test/x:v1", json={})
        assert (r.status_code, r.json()["code"]) == (501, "NotAvailable"), r.text
        assert r.headers["content-type"].startswith("application/json")
