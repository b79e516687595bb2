"""Metrics and request-id logging, through a real catalog process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc

from tests.components import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def test_catalog_metrics_and_request_id_in_logs(tmp_path: Path) -> None:
    port, metrics = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        IMGAPI_CATALOG_BIND=f"127.0.0.1:{port}",
        IMGAPI_CATALOG_DATA_DIR=str(tmp_path),
        IMGAPI_CATALOG_METRICS_PORT=str(metrics),
        IMGAPI_CATALOG_ACCESS_LOG="true",
    )
    log = (tmp_path / "catalog.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog_service"], env=env, cwd=ROOT, stderr=log, stdout=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, 30)
        wait_for_port(metrics, 30)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = catalog_pb2_grpc.CatalogServiceStub(ch)
            stub.ListImages(catalog_pb2.ListImagesRequest(), metadata=(("x-request-id", "req-abc-123"),))
            with pytest.raises(grpc.RpcError) as missing:
                stub.GetImage(
                    catalog_pb2.GetImageRequest(uuid="00000000-0000-4000-8000-000000000000"),
                    metadata=(("x-request-id", "req-missing-1"),),
                )
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
        text = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
        assert (
            'imgapi_grpc_requests_total{code="OK",method="ListImages",service="imgapi.v1.CatalogService"} 1.0'
            in text
        )
        assert 'method="GetImage",service="imgapi.v1.CatalogService"} 1.0' in text
        assert "imgapi_grpc_request_seconds_bucket" in text
        deadline = time.monotonic() + 10
        lines: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            log.seek(0)
            lines = [json.loads(ln) for ln in log.read().splitlines() if ln.startswith("{")]
            if any(ln.get("request_id") == "req-missing-1" for ln in lines):
                break
            time.sleep(0.1)
        by_id = {ln.get("request_id"): ln for ln in lines if ln.get("request_id")}
        assert "ListImages OK" in by_id["req-abc-123"]["msg"]
        assert "GetImage NOT_FOUND" in by_id["req-missing-1"]["msg"]
        assert all(ln["service"] == "catalog" for ln in lines)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def test_gateway_and_blob_expose_metrics_and_log_the_request_id(tmp_path: Path) -> None:
    """The request id of an HTTP request reaches the gateway's and the services' log lines."""
    cat, blob, gw = free_port(), free_port(), free_port()
    m_cat, m_blob, m_gw = free_port(), free_port(), free_port()
    base = dict(os.environ)
    procs = []
    logs = {name: (tmp_path / f"{name}.log").open("w+") for name in ("catalog", "blob", "gateway")}
    specs = [
        (
            "catalog",
            ["-m", "catalog_service"],
            {
                "IMGAPI_CATALOG_BIND": f"127.0.0.1:{cat}",
                "IMGAPI_CATALOG_DATA_DIR": str(tmp_path / "c"),
                "IMGAPI_CATALOG_METRICS_PORT": str(m_cat),
                "IMGAPI_CATALOG_ACCESS_LOG": "true",
            },
        ),
        (
            "blob",
            ["-m", "blob_service"],
            {
                "IMGAPI_BLOB_BIND": f"127.0.0.1:{blob}",
                "IMGAPI_BLOB_DATA_DIR": str(tmp_path / "b"),
                "IMGAPI_BLOB_METRICS_PORT": str(m_blob),
                "IMGAPI_BLOB_ACCESS_LOG": "true",
            },
        ),
        (
            "gateway",
            ["-m", "gateway"],
            {
                "IMGAPI_GATEWAY_PORT": str(gw),
                "IMGAPI_GATEWAY_CATALOG_TARGET": f"127.0.0.1:{cat}",
                "IMGAPI_GATEWAY_BLOB_TARGET": f"127.0.0.1:{blob}",
                "IMGAPI_GATEWAY_METRICS_PORT": str(m_gw),
                "IMGAPI_GATEWAY_ACCESS_LOG": "true",
            },
        ),
    ]
    try:
        for name, args, env in specs:
            procs.append(
                subprocess.Popen(
                    [sys.executable, *args],
                    env={**base, **env},
                    cwd=ROOT,
                    stderr=logs[name],
                    stdout=subprocess.DEVNULL,
                )
            )
        for port in (cat, blob, gw, m_cat, m_blob, m_gw):
            wait_for_port(port, 60)
        with httpx.Client(base_url=f"http://127.0.0.1:{gw}", timeout=30) as c:
            deadline = time.monotonic() + 30
            while c.get("/ping").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            manifest = {
                "owner": "86055c40-2547-11e2-8a6b-4bb37edc84ba",
                "name": "obs",
                "version": "1",
                "type": "other",
                "os": "other",
            }
            r = c.post("/images", json=manifest, headers={"x-request-id": "rid-create-1"})
            assert r.status_code == 200 and r.headers["x-request-id"] == "rid-create-1"
            uuid = r.json()["uuid"]
            r = c.put(
                f"/images/{uuid}/file?compression=none",
                content=b"x" * 5000,
                headers={"x-request-id": "rid-upload-1", "content-type": "application/octet-stream"},
            )
            assert r.status_code == 200, r.text
        gw_metrics = httpx.get(f"http://127.0.0.1:{m_gw}/metrics").text
        assert 'imgapi_http_requests_total{method="POST",route="/images",status="200"} 1.0' in gw_metrics
        blob_metrics = httpx.get(f"http://127.0.0.1:{m_blob}/metrics").text
        assert 'imgapi_blob_bytes_total{direction="in"} 5000.0' in blob_metrics
        assert "imgapi_blob_uploads_in_flight 0.0" in blob_metrics
        # Each service exposes only its own metrics (the gateway imports blob/replication code).
        gw_names = {ln.split("{")[0].split(" ")[0] for ln in gw_metrics.splitlines() if ln[:1] != "#"}
        assert [n for n in gw_names if n.startswith("imgapi_") and not n.startswith("imgapi_http_")] == []
        assert "imgapi_http_requests_total" in gw_names
        assert "process_resident_memory_bytes" in gw_names
        assert "imgapi_http_" not in blob_metrics and "imgapi_replication_" not in blob_metrics

        def ids(name: str) -> set[str]:
            logs[name].seek(0)
            out = set()
            for ln in logs[name].read().splitlines():
                if ln.startswith("{"):
                    out.add(json.loads(ln).get("request_id", ""))
            return out

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            "rid-upload-1" in ids("blob")
            and "rid-create-1" in ids("catalog")
            and "rid-upload-1" in ids("gateway")
        ):
            time.sleep(0.1)
        assert "rid-create-1" in ids("catalog") and "rid-upload-1" in ids("catalog")
        assert "rid-upload-1" in ids("blob")
        assert {"rid-create-1", "rid-upload-1"} <= ids("gateway")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
        for f in logs.values():
            f.close()
