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
            try:
                stub.GetImage(
                    catalog_pb2.GetImageRequest(uuid="00000000-0000-4000-8000-000000000000"),
                    metadata=(("x-request-id", "req-missing-1"),),
                )
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND
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
