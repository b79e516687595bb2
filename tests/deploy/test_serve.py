"""``python -m imgapi_cli.serve`` (``imgapi serve`` / ``scripts/run``): the embedded default.

One command starts catalog (SQLite) + blob (local dir) + replication + gateway as child processes on
one data directory; it stops them cleanly on SIGTERM/SIGINT, keeps every image and file across restarts,
refuses a second instance on the same directory, and stops everything if a service dies.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.deploy.procs import JUNK, JUNK_MD5, SDC, Proc, Procs, procs_group

SERVE = [
    sys.executable,
    "-m",
    "imgapi_cli.serve",
    *("--port", "0", "--catalog-port", "0", "--blob-port", "0", "--replication-port", "0"),
]


@pytest.fixture()
def procs(tmp_path: Path) -> Iterator[Procs]:
    logs = tmp_path / "logs"
    logs.mkdir()
    with procs_group(logs) as group:
        yield group


def start(procs: Procs, data: Path, name: str = "serve") -> tuple[Proc, str, list[psutil.Process]]:
    ready = data.parent / f"{name}.ready"
    proc = procs.spawn(name, [*SERVE, "--data-dir", str(data), "--ready-file", str(ready)])
    deadline = time.monotonic() + 90
    while not ready.exists():
        assert proc.alive(), proc.tail()
        assert time.monotonic() < deadline, proc.tail()
        time.sleep(0.1)
    url = ready.read_text().splitlines()[0]
    children = psutil.Process(proc.popen.pid).children()
    assert len(children) == 4, children
    return proc, url, children


def stop(proc: Proc, children: list[psutil.Process], sig: int = signal.SIGTERM) -> None:
    proc.popen.send_signal(sig)
    assert proc.popen.wait(60) == 0, proc.tail()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"children left running: {alive}"
    assert "imgapi: stopped" in proc.tail()


def test_restart_keeps_images_and_files(tmp_path: Path, procs: Procs) -> None:
    data = tmp_path / "var"
    data_bytes = JUNK.read_bytes()
    proc, url, children = start(procs, data)
    assert "REST (IMGAPI)" in proc.tail() and url.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=url, headers={"Accept-Version": "*"}, timeout=30) as c:
        r = c.post(
            "/images",
            json={"name": "kept", "version": "1", "os": "smartos", "type": "zone-dataset", "owner": SDC},
        )
        assert r.status_code == 200, r.text
        uuid = r.json()["uuid"]
        assert c.put(f"/images/{uuid}/file?compression=bzip2", content=data_bytes).status_code == 200
        assert c.post(f"/images/{uuid}?action=activate", json={}).json()["state"] == "active"
    assert (data / "catalog" / "catalog.db").exists() and (data / "blobs").is_dir()
    stop(proc, children)

    proc, url, children = start(procs, data, "serve2")
    with httpx.Client(base_url=url, headers={"Accept-Version": "*"}, timeout=30) as c:
        img = c.get(f"/images/{uuid}").json()
        assert img["state"] == "active" and img["name"] == "kept"
        r = c.get(f"/images/{uuid}/file")
        assert r.status_code == 200 and r.headers["content-md5"] == JUNK_MD5 and r.content == data_bytes
    stop(proc, children, signal.SIGINT)


def test_second_instance_on_same_data_dir_fails(tmp_path: Path, procs: Procs) -> None:
    data = tmp_path / "var"
    proc, _url, children = start(procs, data)
    out = subprocess.run([*SERVE, "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "already in use by another imgapi serve" in out.stderr
    assert f"pid {proc.popen.pid}" in out.stderr
    assert all(ch.is_running() for ch in children)  # the first instance is unaffected
    stop(proc, children)


def test_a_dying_service_stops_everything(tmp_path: Path, procs: Procs) -> None:
    proc, _url, children = start(procs, tmp_path / "var")
    blob = next(ch for ch in children if "blob_service" in ch.cmdline())
    blob.kill()
    assert proc.popen.wait(60) == 1
    assert "blob exited unexpectedly" in proc.tail()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive


def test_a_killed_supervisor_takes_its_services_with_it(tmp_path: Path, procs: Procs) -> None:
    """SIGKILL leaves the supervisor no chance to stop anything: the kernel's parent-death signal
    (set by imgapi_common.deathsig before each service starts) stops the services."""
    proc, _url, children = start(procs, tmp_path / "var")
    assert {"catalog_service", "blob_service", "replication", "gateway"} <= {
        part for ch in children for part in ch.cmdline()
    }
    proc.popen.kill()
    proc.popen.wait(10)
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"services left running: {alive}"


def test_the_replication_service_is_part_of_the_stack(tmp_path: Path, procs: Procs) -> None:
    """``imgapi serve`` runs the replication service and wires the gateway's /replication/jobs
    routes to it: a job created through REST is stored by that service and survives a restart."""
    data = tmp_path / "var"
    proc, url, children = start(procs, data)
    ready = (data.parent / "serve.ready").read_text().splitlines()
    assert len(ready) == 4 and ready[3].startswith("grpc://127.0.0.1:")
    assert "replication gRPC" in proc.tail()
    spec = {"name": "from-elsewhere", "source_kind": "rest", "source_url": "http://127.0.0.1:9/"}
    with httpx.Client(base_url=url, headers={"Accept-Version": "*"}, timeout=30) as c:
        assert c.get("/replication/jobs").json() == []
        r = c.post("/replication/jobs", json=spec)
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["spec"]["name"] == "from-elsewhere"
        assert c.post(f"/replication/jobs/{job['id']}?action=pause", json={}).json()["state"] == "paused"
    assert (data / "replication").is_dir()
    stop(proc, children)

    proc, url, children = start(procs, data, "serve2")
    with httpx.Client(base_url=url, headers={"Accept-Version": "*"}, timeout=30) as c:
        jobs = c.get("/replication/jobs").json()
        assert [(j["id"], j["state"]) for j in jobs] == [(job["id"], "paused")]
    stop(proc, children)
