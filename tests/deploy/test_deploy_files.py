"""The production files are consistent and valid: the compose Envoy entry point renders a config the
real Envoy accepts, compose wires every service to the ports the others use, the systemd units pass
``systemd-analyze verify``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.components import envoy_binary
from tests.deploy.procs import ROOT

DEPLOY = ROOT / "deploy"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


@pytest.mark.envoy
def test_envoy_entrypoint_renders_a_valid_config(tmp_path: Path) -> None:
    """deploy/envoy/entrypoint.sh with the compose environment, Envoy in validate mode."""
    env_vars = compose()["services"]["envoy"]["environment"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")} | env_vars
    env["PATH"] = f"{Path(envoy_binary()).parent}:{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    env["IMGAPI_ENVOY_CONFIG"] = str(tmp_path / "envoy.yaml")
    env["IMGAPI_ENVOY_FLAGS"] = "--mode validate"
    out = subprocess.run(
        [str(DEPLOY / "envoy" / "entrypoint.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = (tmp_path / "envoy.yaml").read_text()
    assert text.count("type: STRICT_DNS") == 3  # service names: every replica is an endpoint


def test_compose_wiring() -> None:
    services = compose()["services"]
    assert {"postgres", "minio", "migrate", "catalog", "blob", "gateway", "envoy"} <= set(services)
    assert services["migrate"]["command"][-1] == "migrate"
    assert services["catalog"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    cat, blob, gw = (services[n]["environment"] for n in ("catalog", "blob", "gateway"))
    envoy = services["envoy"]["environment"]
    assert cat["IMGAPI_CATALOG_AUTO_MIGRATE"] == "false"
    assert envoy["IMGAPI_ENVOY_CATALOGS"] == "catalog:" + cat["IMGAPI_CATALOG_BIND"].rsplit(":", 1)[1]
    assert envoy["IMGAPI_ENVOY_BLOBS"] == "blob:" + blob["IMGAPI_BLOB_BIND"].rsplit(":", 1)[1]
    assert envoy["IMGAPI_ENVOY_GATEWAYS"] == f"gateway:{gw['IMGAPI_GATEWAY_PORT']}"
    assert gw["IMGAPI_GATEWAY_CATALOG_TARGET"] == gw["IMGAPI_GATEWAY_BLOB_TARGET"] == "envoy:8080"
    assert blob["IMGAPI_BLOB_BACKEND"] == "s3"
    for name in ("catalog", "blob", "gateway"):
        assert services[name]["deploy"]["replicas"] >= 2
    # Every environment variable named in compose is a real setting (extra="forbid" would refuse it).
    from blob_service.settings import BlobSettings
    from catalog_service.settings import CatalogSettings
    from gateway.settings import GatewaySettings

    known = {
        f"IMGAPI_{prefix}_{field.upper()}"
        for prefix, cls in (
            ("CATALOG", CatalogSettings),
            ("BLOB", BlobSettings),
            ("GATEWAY", GatewaySettings),
        )
        for field in cls.model_fields
    }
    for name in ("migrate", "catalog", "blob", "gateway"):
        env = services[name].get("environment") or services[name]["environment"]
        unknown = {k for k in env if k.startswith("IMGAPI_") and k not in known}
        assert not unknown, (name, unknown)


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    venv = ROOT / ".venv"
    names = []
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/opt/imgapi/.venv", str(venv)).replace("/opt/imgapi", str(ROOT))
        (tmp_path / unit.name).write_text(text)
    for template, instance in (
        ("imgapi-catalog@", "8501"),
        ("imgapi-blob@", "8502"),
        ("imgapi-gateway@", "8081"),
    ):
        (tmp_path / f"{template}{instance}.service").symlink_to(tmp_path / f"{template}.service")
        names.append(f"{template}{instance}.service")
    names += ["imgapi-envoy.service", "imgapi-migrate.service", "imgapi.target"]
    out = subprocess.run(
        [analyze, "verify", "--man=no", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "imgapi" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_configuration_reference_names_every_setting() -> None:
    """docs/configuration.md lists every setting of the three services (and no stale one)."""
    import re

    from blob_service.settings import BlobSettings
    from catalog_service.settings import CatalogSettings
    from gateway.settings import GatewaySettings

    known = {
        f"IMGAPI_{prefix}_{field.upper()}"
        for prefix, cls in (
            ("CATALOG", CatalogSettings),
            ("BLOB", BlobSettings),
            ("GATEWAY", GatewaySettings),
        )
        for field in cls.model_fields
    }
    text = (ROOT / "docs" / "configuration.md").read_text()
    listed = set(re.findall(r"^\| `(IMGAPI_(?:CATALOG|BLOB|GATEWAY)_[A-Z0-9_]+)`", text, re.M))
    assert known - listed == set(), f"undocumented settings: {sorted(known - listed)}"
    assert listed - known == set(), f"documented settings that do not exist: {sorted(listed - known)}"
