"""The production front: an import streamed through the real Envoy (deploy/envoy) to the gateway."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.deploy.procs import procs_group, spawn_envoy, wait_until
from tests.docker.conftest import Registry0
from tests.docker.stack import Stack
from tests.docker.test_import import IMPORT, lines

pytestmark = pytest.mark.envoy


def test_import_through_envoy(stack: Stack, r0: Registry0, tmp_path: Path) -> None:
    with procs_group(tmp_path) as procs:
        envoy = spawn_envoy(
            procs,
            tmp_path,
            gateways=[stack.url],
            catalogs=[stack.dc.catalog_target],
            blobs=[stack.dc.blob_target],
        )
        wait_until("envoy: every replica healthy", envoy.all_healthy, [envoy.proc], 60)
        with httpx.Client(base_url=envoy.url, timeout=60) as c:
            r = c.post(f"{IMPORT}&repo={r0.host}/test/big&tag=v1")
            assert r.headers["content-type"].startswith("application/json")
            msgs = lines(r)
            assert msgs[-1]["payload"]["status"].startswith("Status: "), msgs[-1]
            assert any(m.get("payload", {}).get("status") == "Downloading" for m in msgs)
