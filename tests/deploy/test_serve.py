"""``python -m imgapi_cli.serve`` (``imgapi serve`` / ``scripts/run``): the embedded default.

One command starts catalog (SQLite) + blob (local dir) + replication + gateway on one data directory
(the three services in one process by default, each in its own with ``--split``); it stops them cleanly on SIGTERM/SIGINT, keeps every image and file across restarts,
refuses a second instance on the same directory, and stops everything if a service dies.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2

from imgapi_common.internal_auth import channel
from imgapi_common.log_lines import TOKEN_SETTING
from tests.deploy.procs import JUNK, JUNK_MD5, SDC, TOKEN, Proc, Procs, procs_group

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


def start(
    procs: Procs, data: Path, name: str = "serve", *extra: str, env: dict[str, str] | None = None
) -> tuple[Proc, str, list[psutil.Process]]:
    ready = data.parent / f"{name}.ready"
    proc = procs.spawn(name, [*SERVE, "--data-dir", str(data), "--ready-file", str(ready), *extra], env)
    deadline = time.monotonic() + 90
    while not ready.exists():
        assert proc.alive(), proc.tail()
        assert time.monotonic() < deadline, proc.tail()
        time.sleep(0.1)
    url = ready.read_text().splitlines()[0]
    children = psutil.Process(proc.popen.pid).children()
    assert len(children) == (4 if "--split" in extra else 1), children
    return proc, url, children


def records(proc: Proc) -> list[dict[str, Any]]:
    """Every line the supervisor and its services wrote (not a terminal: all JSON log lines)."""
    out = []
    for line in proc.log.read_text().splitlines():
        assert line.startswith("{"), f"not a JSON log line: {line!r}"
        rec = json.loads(line)
        assert {"ts", "level", "service", "msg"} <= rec.keys(), rec
        out.append(rec)
    return out


def serve_said(proc: Proc, msg: str) -> dict[str, Any] | None:
    return next((r for r in records(proc) if r["service"] == "serve" and r["msg"] == msg), None)


def stop(proc: Proc, children: list[psutil.Process], sig: int = signal.SIGTERM) -> None:
    proc.popen.send_signal(sig)
    assert proc.popen.wait(60) == 0, proc.tail()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"children left running: {alive}"
    assert serve_said(proc, "stopped") is not None, proc.tail()


def test_restart_keeps_images_and_files(tmp_path: Path, procs: Procs) -> None:
    """Restarted in the production shape (``--split``: one process per service), the same data
    directory serves the same images and files."""
    data = tmp_path / "var"
    data_bytes = JUNK.read_bytes()
    proc, url, children = start(procs, data)
    ready = serve_said(proc, "ready")
    assert ready is not None and ready["rest"] == url and url.startswith("http://127.0.0.1:")
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

    proc, url, children = start(procs, data, "serve2", "--split")
    with httpx.Client(base_url=url, headers={"Accept-Version": "*"}, timeout=30) as c:
        img = c.get(f"/images/{uuid}").json()
        assert img["state"] == "active" and img["name"] == "kept"
        r = c.get(f"/images/{uuid}/file")
        assert r.status_code == 200 and r.headers["content-md5"] == JUNK_MD5 and r.content == data_bytes
    stop(proc, children, signal.SIGINT)


def test_answered_writes_survive_kill_9(tmp_path: Path, procs: Procs) -> None:
    """Every write the embedded stack answered is there after SIGKILL of all its processes: 200
    images (enough for the catalog's WAL checkpoints to run on their own thread, and to start the
    WAL over), each with a small file stored as one file, half of them activated."""
    data = tmp_path / "var"
    proc, url, children = start(procs, data)
    files: dict[str, bytes] = {}
    with httpx.Client(base_url=url, headers={"Accept-Version": "*"}, timeout=30) as c:
        for i in range(200):
            r = c.post(
                "/images",
                json={"name": f"k{i}", "version": "1", "os": "smartos", "type": "zone-dataset", "owner": SDC},
            )
            assert r.status_code == 200, r.text
            uuid = r.json()["uuid"]
            files[uuid] = os.urandom(100 + i)
            assert c.put(f"/images/{uuid}/file?compression=none", content=files[uuid]).status_code == 200
            if i % 2:
                assert c.post(f"/images/{uuid}?action=activate").json()["state"] == "active"
    for p in [psutil.Process(proc.popen.pid), *children]:
        p.kill()
    proc.popen.wait(10)
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive
    assert (data / "catalog" / "catalog.db-wal").stat().st_size > 0  # not closed cleanly

    proc, url, children = start(procs, data, "serve2")
    with httpx.Client(base_url=url, headers={"Accept-Version": "*"}, timeout=30) as c:
        for i, (uuid, content) in enumerate(files.items()):
            img = c.get(f"/images/{uuid}").json()
            assert (img["name"], img["state"]) == (f"k{i}", "active" if i % 2 else "unactivated")
            r = c.get(f"/images/{uuid}/file")
            assert r.status_code == 200 and r.content == content
    stop(proc, children)


def test_second_instance_on_same_data_dir_fails(tmp_path: Path, procs: Procs) -> None:
    data = tmp_path / "var"
    proc, _url, children = start(procs, data)
    out = subprocess.run([*SERVE, "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "already in use by another imgapi serve" in out.stderr
    assert f"pid {proc.popen.pid}" in out.stderr
    assert all(ch.is_running() for ch in children)  # the first instance is unaffected
    stop(proc, children)


@pytest.mark.parametrize(
    ("extra", "victim", "name"),
    [((), "imgapi_cli.monolith", "services"), (("--split",), "blob_service", "blob")],
)
def test_a_dying_service_stops_everything(
    tmp_path: Path, procs: Procs, extra: tuple[str, ...], victim: str, name: str
) -> None:
    proc, _url, children = start(procs, tmp_path / "var", "serve", *extra)
    dying = next(ch for ch in children if victim in ch.cmdline())
    dying.kill()
    assert proc.popen.wait(60) == 1
    assert f"{name} exited unexpectedly" in proc.tail()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive


def test_a_killed_supervisor_takes_its_services_with_it(tmp_path: Path, procs: Procs) -> None:
    """SIGKILL leaves the supervisor no chance to stop anything: the kernel's parent-death signal
    (set by imgapi_common.deathsig before each service starts) stops the services."""
    proc, _url, children = start(procs, tmp_path / "var")
    assert [ch.cmdline()[-1] for ch in children] == ["imgapi_cli.monolith"]  # gateway included
    proc.popen.kill()
    proc.popen.wait(10)
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"services left running: {alive}"


def test_the_gateway_and_the_catalog_port_are_one_catalog(tmp_path: Path, procs: Procs) -> None:
    """The gateway calls the catalog in-process; a client of the catalog's gRPC port (replication, an
    operator's tool) reaches the same catalog: REST reads its writes at once, a listing the gateway
    keeps included, and the port reads what REST writes."""
    data = tmp_path / "var"
    proc, url, children = start(procs, data, env={TOKEN_SETTING: TOKEN})
    catalog_target = (data.parent / "serve.ready").read_text().splitlines()[1].removeprefix("grpc://")
    stub = catalog_pb2_grpc.CatalogServiceStub(channel(catalog_target, TOKEN))
    m = {"name": "via-grpc", "version": "1", "os": "smartos", "type": "zone-dataset", "owner": SDC}
    with httpx.Client(base_url=url, headers={"Accept-Version": "*"}, timeout=30) as c:
        assert c.get("/images?state=all").json() == []
        assert c.get("/images?state=all").json() == []  # now answered from the gateway's kept copy
        made = stub.CreateImage(
            catalog_pb2.CreateImageRequest(caller=common_pb2.CallerContext(), manifest_json=json.dumps(m)),
            timeout=30,
        )
        uuid = made.image.uuid
        assert [i["uuid"] for i in c.get("/images?state=all").json()] == [uuid]
        assert c.get(f"/images/{uuid}").json()["name"] == "via-grpc"
        r = c.post(f"/images/{uuid}?action=update", json={"description": "via REST"})
        assert r.status_code == 200, r.text
    got = stub.GetImage(catalog_pb2.GetImageRequest(uuid=uuid, caller=common_pb2.CallerContext()), timeout=30)
    assert got.image.description == "via REST"
    # In-process: the stack holds no connection to its own catalog port (only this test does).
    port = int(catalog_target.rpartition(":")[2])
    assert not [c for c in children[0].net_connections() if c.raddr and c.raddr.port == port]
    stop(proc, children)


def test_an_invalid_gateway_setting_stops_the_stack(tmp_path: Path, procs: Procs) -> None:
    proc = procs.spawn(
        "serve", [*SERVE, "--data-dir", str(tmp_path / "var")], {"IMGAPI_GATEWAY_AUTH_TYPE": "bogus"}
    )
    assert proc.popen.wait(90) == 1
    bad = [r for r in records(proc) if r["service"] == "gateway" and r["level"] == "error"]
    assert (
        bad and "invalid configuration (IMGAPI_GATEWAY_*)" in bad[0]["msg"] and "auth_type" in bad[0]["msg"]
    )
    assert "services exited during start-up (status 2)" in proc.tail()


def test_the_replication_service_is_part_of_the_stack(tmp_path: Path, procs: Procs) -> None:
    """``imgapi serve`` runs the replication service and wires the gateway's /replication/jobs
    routes to it: a job created through REST is stored by that service and survives a restart."""
    data = tmp_path / "var"
    proc, url, children = start(procs, data)
    ready = (data.parent / "serve.ready").read_text().splitlines()
    assert len(ready) == 4 and ready[3].startswith("grpc://127.0.0.1:")
    said = serve_said(proc, "ready")
    assert said is not None and f"grpc://{said['replication']}" == ready[3]
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


def test_logs_are_json_lines_from_every_process_uvicorn_included(tmp_path: Path, procs: Procs) -> None:
    """Output that is not a terminal: one JSON object per line, from the supervisor and from each
    service, uvicorn's own error lines included."""
    proc, url, children = start(procs, tmp_path / "var")
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # uvicorn logs "Invalid HTTP request received."
        s.recv(1024)
    deadline = time.monotonic() + 20
    while not any(r.get("logger", "").startswith("uvicorn") for r in records(proc)):
        assert time.monotonic() < deadline, proc.tail()
        time.sleep(0.1)
    stop(proc, children)
    services = {r["service"] for r in records(proc)}
    assert {"serve", "catalog", "blob", "replication", "gateway"} <= services, services
    uvicorn = next(r for r in records(proc) if r.get("logger", "").startswith("uvicorn"))
    assert uvicorn["service"] == "gateway" and "Invalid HTTP request" in uvicorn["msg"]


def test_human_lines_on_a_terminal(tmp_path: Path) -> None:
    """Run on a terminal (a pty), the supervisor and the services print human lines, no JSON."""
    primary, secondary = os.openpty()
    proc = subprocess.Popen(
        [*SERVE, "--data-dir", str(tmp_path / "var")],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env={k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")},
    )
    os.close(secondary)
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 90
        while marker not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, seen.decode(errors="replace")
            if select.select([primary], [], [], 0.5)[0]:
                seen += os.read(primary, 65536)

    try:
        read_until(b"Press Ctrl-C to stop.")
        proc.send_signal(signal.SIGINT)
        read_until(b"imgapi: stopped")
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    text = seen.decode()
    assert "imgapi: ready" in text and "REST (IMGAPI)" in text and "replication gRPC" in text
    assert "gateway listening on http://" in text and "catalog listening on" in text
    assert not [ln for ln in text.splitlines() if ln.lstrip().startswith("{")], text
