"""``imgapi export`` then ``imgapi import`` (AdminImportImage with a local manifest + file): the image
comes back with its uuid, manifest fields and the same file bytes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.conftest import LUKE, Cli


def test_export_then_import_round_trip(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "disk.gz"
    src.write_bytes(os.urandom(300_000))
    made = cli.create(description="round trip")
    u, name = made["uuid"], made["name"]
    cli("upload", u, str(src), "--no-progress")
    before = cli.json("activate", u)

    out = tmp_path / "exported"
    written = cli.json("-j", "export", f"{name}@1.0.0", str(out), "--no-progress")
    manifest = out / f"{name}-1.0.0.imgmanifest"
    image_file = out / f"{name}-1.0.0.zfs.gz"
    assert written["manifest"] == str(manifest) and written["file"] == str(image_file)
    assert json.loads(manifest.read_text()) == before
    assert image_file.read_bytes() == src.read_bytes()

    cli("delete", u)
    imported = cli.json("-j", "import", str(manifest), str(image_file), "--no-progress")
    assert imported["uuid"] == u and imported["state"] == "active"
    assert imported["owner"] == LUKE and imported["description"] == "round trip"
    assert imported["files"][0]["sha1"] == before["files"][0]["sha1"]
    assert imported["files"][0]["compression"] == "gzip"

    r = cli("import", str(manifest), code=1)  # the uuid exists now
    assert "ImageUuidAlreadyExists" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert "must be a JSON object with a uuid" in cli("import", str(bad), code=2).stderr
