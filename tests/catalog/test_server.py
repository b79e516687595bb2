"""The catalog process: health checking, reflection, configuration errors, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.components import ROOT, free_port, wait_for_port


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(IMGAPI_CATALOG_DATA_DIR=str(tmp), **extra)
    return env


def test_health_reflection_and_graceful_shutdown(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog_service"],
        env=_env(tmp_path, IMGAPI_CATALOG_BIND=f"127.0.0.1:{port}"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for_port(port, 60)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            for service in ("", "imgapi.v1.CatalogService"):
                r = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert r.status == health_pb2.HealthCheckResponse.SERVING
            refl = reflection_pb2_grpc.ServerReflectionStub(ch)
            responses = refl.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
            )
            names = {s.name for r in responses for s in r.list_services_response.service}
            assert {"imgapi.v1.CatalogService", "grpc.health.v1.Health"} <= names
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert time.monotonic() - started < 15
        assert proc.stdout is not None
        assert f"catalog listening on 127.0.0.1:{port}" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_bad_configuration_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "catalog_service"],
        env=_env(tmp_path, IMGAPI_CATALOG_MODE="bogus", IMGAPI_CATALOG_ADMIN_UUID="NOT-A-UUID"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    line = json.loads(proc.stderr)  # not a terminal: one JSON log line, like every other line
    assert line["level"] == "error" and line["service"] == "catalog"
    assert "invalid configuration (IMGAPI_CATALOG_*)" in line["msg"]
    assert "mode" in line["msg"] and "admin_uuid" in line["msg"]
