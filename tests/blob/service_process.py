"""Running ``python -m blob_service`` as a child process with settings passed through the env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from blob_service.settings import BlobSettings
from tests.components import wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: BlobSettings) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"IMGAPI_BLOB_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class ServiceProcess:
    def __init__(self, settings: BlobSettings, port: int, log: Path) -> None:
        self.settings = settings.model_copy(update={"bind": f"127.0.0.1:{port}"})
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_BLOB_")}
        env |= settings_env(self.settings)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blob_service"], cwd=ROOT, env=env, stdout=out, stderr=out
            )
        wait_for_port(self.port, timeout)
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as ch:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=timeout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no checkpoint, no cleanup
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM (graceful); returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
