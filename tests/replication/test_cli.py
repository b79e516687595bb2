"""``imgapi replicate ...`` (the Typer sub-app) against an in-process replication service."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from imgapi_cli.replicate import replicate_app
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
        assert res.exit_code == 0 and "state" in res.output
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
