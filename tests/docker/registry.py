"""Debian's ``docker-registry`` (distribution 2.8) on loopback, started by the tests: without auth,
or with htpasswd Basic auth. Outside CI a missing binary skips loudly; with CI=true it fails."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.components import free_port, missing


def require_tools() -> None:
    for tool, package in (
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("htpasswd", "apache2-utils"),
    ):
        if shutil.which(tool) is None:
            missing(tool, f"install Debian's {package} (scripts/setup does it as root)")


@dataclass
class RegistryServer:
    port: int
    root: Path
    stop: Callable[[], None]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_registry(root: Path, auth_yaml: str = "") -> RegistryServer:
    """``docker-registry serve`` with its own storage under ``root``, ready when ``/v2/`` answers."""
    require_tools()
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth_yaml
    )
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code in (200, 401):
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"docker-registry did not start: {(root / 'registry.log').read_text()}")
        time.sleep(0.05)
    return RegistryServer(port, root, stop)


def start_htpasswd_registry(root: Path, user: str, password: str) -> RegistryServer:
    require_tools()
    root.mkdir(parents=True, exist_ok=True)
    pw = root / "htpasswd"
    out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True, timeout=30)
    pw.write_bytes(out.stdout)
    return start_registry(root, f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {pw}\n")
