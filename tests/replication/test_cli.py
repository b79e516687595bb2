"""``imgapi replicate ...`` (the Typer sub-app) against an in-process replication service."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from imgapi_cli.main import app
from imgapi_cli.replicate import replicate_app
from tests.components import free_port
from tests.replication.stacks import start_dc, start_replicator


def test_cli_create_list_status_pause_resume_delete(tmp_path: Path) -> None:
    a = start_dc(tmp_path, "a")
    b = start_dc(tmp_path, "b")
    r = start_replicator(tmp_path, b)
    try:
        uuid = a.publish(b"cli file", name="cli")
        cli = CliRunner()
        t = ["--target", r.target]
        res = cli.invoke(
            replicate_app,
            [
                "create",
                *t,
                "--name",
                "cli-job",
                "--source-catalog",
                a.catalog_target,
                "--source-blob",
                a.blob_target,
                "--tag",
                "x=1",
                "--deletes",
                "--json",
            ],
        )
        assert res.exit_code == 0, res.output
        job = json.loads(res.output)
        job_id = job["id"]
        assert job["spec"]["filters"]["tags"] == {"x": "1"}
        res = cli.invoke(replicate_app, ["list", *t, "--json"])
        assert res.exit_code == 0 and [j["spec"]["name"] for j in json.loads(res.output)] == ["cli-job"]
        res = cli.invoke(replicate_app, ["list", *t])
        assert res.exit_code == 0 and "state" in res.output.lower()
        res = cli.invoke(replicate_app, ["status", job_id, *t, "--json"])
        assert res.exit_code == 0 and json.loads(res.output)["id"] == job_id
        res = cli.invoke(replicate_app, ["status", job_id, *t])
        assert res.exit_code == 0, res.output
        assert cli.invoke(replicate_app, ["pause", job_id, *t]).output.strip().endswith("paused")
        assert cli.invoke(replicate_app, ["resume", job_id, *t]).output.strip().endswith("running")
        res = cli.invoke(replicate_app, ["status", "nope", *t])
        assert res.exit_code == 1 and "ResourceNotFound" in res.output
        res = cli.invoke(replicate_app, ["create", *t, "--source-url", "ftp://x"])
        assert res.exit_code == 1 and "InvalidParameter" in res.output
        assert "deleted" in cli.invoke(replicate_app, ["delete", job_id, *t]).output
        assert b.get(uuid) is None  # filtered out by tag x=1
    finally:
        r.stop()
        b.stop()
        a.stop()


def test_cli_json_names_failing_sources_and_narrow_terminals(tmp_path: Path) -> None:
    """Through the real ``imgapi`` command: ``-j`` prints the REST routes' job objects (snake_case,
    integers), jobs answer to their (unique) name, an unreachable source shows as failing with its
    error, a narrow terminal folds ids instead of cutting them, errors name the service."""
    b = start_dc(tmp_path, "b")
    r = start_replicator(tmp_path, b)
    try:
        cli = CliRunner()
        t = ["--target", r.target]
        dead = f"http://127.0.0.1:{free_port()}/"
        res = cli.invoke(app, ["replicate", "create", *t, "--name", "far", "--source-url", dead, "-j"])
        assert res.exit_code == 0, res.output
        job = json.loads(res.stdout)
        assert isinstance(job["bytes_copied"], int) and isinstance(job["cursor"], int)
        assert job["spec"]["source_kind"] == "rest" and job["spec"]["source_url"] == dead
        assert "bytesCopied" not in res.stdout and "sourceKind" not in res.stdout

        res = cli.invoke(app, ["replicate", "create", *t, "--name", "far", "--source-url", dead])
        assert res.exit_code == 1
        assert "already exists" in res.stderr and job["id"] in res.stderr
        assert res.stderr.startswith("imgapi: error: InvalidParameter") and r.target in res.stderr

        deadline = time.monotonic() + 30
        while True:
            shown = json.loads(cli.invoke(app, ["replicate", "status", "far", *t, "-j"]).stdout)
            if shown["last_error"]:
                break
            assert time.monotonic() < deadline, shown
            time.sleep(0.2)
        assert shown["id"] == job["id"]
        res = cli.invoke(app, ["replicate", "list", *t], env={"COLUMNS": "60"})
        assert res.exit_code == 0, res.output
        assert "failing" in res.stdout
        flat = "".join(res.stdout.split())  # cells fold over lines: join them back
        assert job["id"] in flat and dead in flat
        assert "…" not in res.stdout
        wide = cli.invoke(app, ["replicate", "list", *t], env={"COLUMNS": "300"}).stdout
        header, line = wide.splitlines()[:2]
        assert header.split()[:4] == ["ID", "NAME", "SOURCE", "STATE"]
        assert line.split()[:4] == [job["id"], "far", dead, "failing"]
        assert shown["last_error"][:40] in line  # the error is on the job's line
        out = cli.invoke(app, ["replicate", "pause", "far", *t])
        assert out.exit_code == 0 and out.stdout.strip() == f"job {job['id']}: paused"
        res = cli.invoke(app, ["replicate", "status", "nope", *t])
        assert res.exit_code == 1 and "ResourceNotFound" in res.stderr and "'nope'" in res.stderr
        res = cli.invoke(app, ["replicate", "list", "--target", f"127.0.0.1:{free_port()}"])
        assert res.exit_code == 1 and res.stderr.startswith("imgapi: error:")
        out = cli.invoke(app, ["replicate", "delete", "far", *t])
        assert out.exit_code == 0 and out.stdout.strip() == f"job {job['id']}: deleted"
    finally:
        r.stop()
        b.stop()
