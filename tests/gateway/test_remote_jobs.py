"""The gateway's side of remote import jobs: without a replication service configured, imports are
refused with 503 and there are no jobs; with one, the job record the gateway shows is read from it
(and still is after the service restarts)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.settings import GatewaySettings
from tests.components import free_port
from tests.gateway.conftest import _start_gateway, start_replication
from tests.gateway.helpers import err
from tests.gateway.test_import import VADER_PRIVATE, FakeImgapi
from tests.replication.stacks import DC, start_dc


@pytest.fixture()
def dc(tmp_path: Path) -> Iterator[DC]:
    d = start_dc(tmp_path, "dc")
    yield d
    d.stop()


def gateway(dc: DC, **settings: Any) -> tuple[httpx.Client, Any]:
    port = free_port()
    stop = _start_gateway(
        GatewaySettings(
            host="127.0.0.1",
            port=port,
            catalog_target=dc.catalog_target,
            blob_target=dc.blob_target,
            **settings,
        )
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Accept-Version": "*"}, timeout=30)
    return client, stop


def test_without_a_replication_service(dc: DC) -> None:
    uuid = dc.create()
    c, stop = gateway(dc)
    try:
        r = c.post(f"/images/{uuid}?action=import-remote&source=https://images.example.org", json={})
        body = err(r, 503, "ServiceUnavailableError")
        assert "IMGAPI_GATEWAY_REPLICATION_TARGET" in body["message"]
        err(c.get("/jobs/0b3a3a62-5d2e-4a5f-8e7f-7a4a1c9d2e11"), 404, "ResourceNotFound")
        r = c.get(f"/images/{uuid}/jobs")
        assert r.status_code == 200 and r.json() == []
    finally:
        c.close()
        stop()


def test_job_record_outlives_a_restart_of_the_replication_service(dc: DC, tmp_path: Path) -> None:
    remote = FakeImgapi()
    database_url = f"sqlite:///{tmp_path}/replication.db"
    imports = {"remote_allowlist": ["127.0.0.0/8"]}
    target, stop_replication = start_replication(
        tmp_path, dc.catalog_target, dc.blob_target, database_url, **imports
    )
    c, stop = gateway(dc, replication_target=target)
    try:
        r = c.post(f"/images/{VADER_PRIVATE}?action=import-remote&source={remote.url}", json={})
        assert r.status_code == 200, r.text
        job_uuid = r.json()["job_uuid"]
        deadline = time.monotonic() + 60
        while (job := c.get(f"/jobs/{job_uuid}").json())["execution"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        assert job["execution"] == "succeeded", job
        listed = c.get(f"/images/{VADER_PRIVATE}/jobs").json()
        stop_replication()
        err(c.get(f"/jobs/{job_uuid}"), 503, "ServiceUnavailableError")  # the service is down
        # The same port again: the gateway's channel reconnects (after its backoff) to the restarted service.
        _, stop_replication = start_replication(
            tmp_path, dc.catalog_target, dc.blob_target, database_url, bind=target, **imports
        )
        deadline = time.monotonic() + 30
        while (r := c.get(f"/jobs/{job_uuid}")).status_code == 503:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.1)
        assert r.status_code == 200 and r.json() == job
        assert c.get(f"/images/{VADER_PRIVATE}/jobs").json() == listed == [job]
    finally:
        c.close()
        stop()
        stop_replication()
        remote.close()
