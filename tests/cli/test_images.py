"""Image lifecycle, listing, ACL, icon and error reporting through the ``imgapi`` CLI."""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import uuid as uuidlib
from pathlib import Path

import httpx

from tests.cli.conftest import EMPEROR, LUKE, VADER, Cli
from tests.components import FIXTURES
from tests.gateway.conftest import Stack

ICON = FIXTURES / "icon.jpg"


def test_lifecycle(cli: Cli, tmp_path: Path) -> None:
    img = cli.create(description="made by the cli")
    u = img["uuid"]
    assert img["state"] == "unactivated" and img["owner"] == LUKE
    assert img["description"] == "made by the cli"
    assert cli.json("get", u) == img

    listed = cli.json("list", "--name", img["name"], "--state", "unactivated", "--json")
    assert [i["uuid"] for i in listed] == [u]
    assert cli.json("list", "--name", img["name"], "--json") == []  # default state=active

    changed = cli.json("update", u, "--set", "description=changed", "--set", 'tags:={"role": "db", "n": 7}')
    assert changed["description"] == "changed" and changed["tags"] == {"role": "db", "n": 7}
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"homepage": "https://example.com/x"}))
    assert cli.json("update", u, str(changes))["homepage"] == "https://example.com/x"
    for tag in ("role=db", "n=7"):
        found = cli.json("list", "--tag", tag, "--state", "all", "--name", img["name"], "--json")
        assert [i["uuid"] for i in found] == [u]
    assert cli.json("list", "--tag", "role=web", "--state", "all", "--name", img["name"], "--json") == []

    data = b"image bytes " * 1000
    path = tmp_path / "img.zfs.bz2"
    path.write_bytes(data)
    cli("upload", u, str(path), "--method", "put", "--no-progress")
    got = cli.json("get", u)
    assert got["files"] == [
        {"sha1": hashlib.sha1(data).hexdigest(), "size": len(data), "compression": "bzip2"}
    ]

    assert cli.json("activate", u)["state"] == "active"
    assert cli.json("disable", u)["state"] == "disabled"
    assert cli.json("list", "--name", img["name"], "--state", "disabled", "--json")[0]["uuid"] == u
    assert cli.json("enable", u)["state"] == "active"

    table = cli("list", "--name", img["name"]).stdout
    assert u in table and "UUID" in table and "active" in table

    # Account scoping: luke sees his image, vader does not (private, not on the ACL).
    assert [i["uuid"] for i in cli.json("--account", LUKE, "list", "--name", img["name"], "--json")] == [u]
    assert cli.json("--account", VADER, "list", "--name", img["name"], "--json") == []

    cli("delete", u)
    r = cli("get", u, code=1)
    assert "ResourceNotFound" in r.stderr and "404" in r.stderr


def test_if_match(cli: Cli) -> None:
    img = cli.create()
    r = cli("update", img["uuid"], "--set", "description=x", "--if-match", "nope", code=1)
    assert "PreconditionFailed" in r.stderr
    with httpx.Client(base_url=cli.stack.base_url, headers={"Accept-Version": "*"}) as c:
        etag = c.get(f"/images/{img['uuid']}").headers["etag"]
    assert cli.json("update", img["uuid"], "--set", "description=y", "--if-match", etag)["description"] == "y"


def test_create_from_manifest_upload_activate(cli: Cli, tmp_path: Path) -> None:
    base = cli.create()
    manifest = copy.deepcopy(base)  # a GetImage answer: server-managed fields are dropped
    manifest.update(name=f"from-manifest-{base['uuid'][:8]}", description="copy")
    mpath = tmp_path / "m.json"
    mpath.write_text(json.dumps(manifest))
    data = b"\x1f\x8b" + b"x" * 5000
    fpath = tmp_path / "payload.tgz"
    fpath.write_bytes(data)
    r = cli("create", "-m", str(mpath), "--file", str(fpath), "--activate", "--no-progress")
    img = json.loads(r.stdout)
    assert "ignoring server-managed fields" in r.stderr
    assert img["uuid"] != base["uuid"] and img["state"] == "active"
    assert img["name"] == manifest["name"] and img["description"] == "copy"
    assert img["files"][0]["compression"] == "gzip"
    assert img["files"][0]["sha1"] == hashlib.sha1(data).hexdigest()


def test_errors(cli: Cli, tmp_path: Path) -> None:
    missing = str(uuidlib.uuid4())
    r = cli("get", missing, code=1)
    assert r.stdout == ""
    assert f"ResourceNotFound (HTTP 404): image {missing} not found" in r.stderr

    r = cli("--json", "get", missing, code=1)
    assert json.loads(r.stderr) == {
        "code": "ResourceNotFound",
        "message": f"image {missing} not found",
        "statusCode": 404,
    }

    r = cli("--account", LUKE, "create", "--name", "x", code=1)  # no version/type/os
    assert "ValidationFailed" in r.stderr
    body = json.loads(cli("--json", "--account", LUKE, "create", "--name", "x", code=1).stderr)
    assert body["code"] == "ValidationFailed" and {e["field"] for e in body["errors"]} >= {"version"}

    r = cli("list", "--state", "bogus", code=1)
    assert "InvalidParameter" in r.stderr and "state" in r.stderr

    img = cli.create()
    r = cli("activate", img["uuid"], code=1)
    assert "NoActivationNoFile" in r.stderr

    r = cli("--url", "http://127.0.0.1:9", "get", missing, code=1)
    assert "ConnectionError" in r.stderr

    r = cli("update", img["uuid"], "--set", "tags:={bad", code=2)  # usage
    assert "Usage" in r.stderr
    r = cli("upload", img["uuid"], str(tmp_path / "nope.gz"), code=1)
    assert "FileNotFound" in r.stderr


def test_acl(cli: Cli) -> None:
    img = cli.create()
    u = img["uuid"]
    assert "acl" not in img
    assert cli.json("acl", "add", u, VADER, EMPEROR)["acl"] == [VADER, EMPEROR]
    assert cli.json("acl", "add", u, VADER)["acl"] == [VADER, EMPEROR]
    assert cli.json("acl", "remove", u, VADER)["acl"] == [EMPEROR]
    assert "acl" not in cli.json("acl", "remove", u, EMPEROR)
    r = cli("acl", "add", u, "not-a-uuid", code=1)
    assert "InvalidParameter" in r.stderr
    r = cli("--account", VADER, "acl", "add", u, EMPEROR, code=1)  # vader cannot see it
    assert "ResourceNotFound" in r.stderr


def test_icon(cli: Cli, tmp_path: Path) -> None:
    img = cli.create()
    u = img["uuid"]
    assert cli.json("icon", "set", u, str(ICON))["icon"] is True
    out = tmp_path / "icon-copy"
    info = cli.json("--json", "icon", "get", u, "-o", str(out))
    assert info == {"path": str(out), "size": ICON.stat().st_size, "content_type": "image/jpeg"}
    assert out.read_bytes() == ICON.read_bytes()
    assert "icon" not in cli.json("icon", "delete", u)
    r = cli("icon", "get", u, "-o", str(out), code=1)
    assert "has no icon" in r.stderr
    not_icon = tmp_path / "x.txt"
    not_icon.write_bytes(b"hello")
    r = cli("icon", "set", u, str(not_icon), "--content-type", "text/plain", code=1)
    assert "Upload" in r.stderr


def test_list_follows_markers(cli: Cli, cli_stack: Stack) -> None:
    """Without --limit the CLI pages like the node client: 1000, then limit=1000&marker=<last>."""
    name = f"many-{uuidlib.uuid4().hex[:8]}"
    t0 = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    records = []
    for i in range(2005):
        published = (t0 + datetime.timedelta(seconds=i // 2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        records.append(
            {
                "v": 2,
                "uuid": str(uuidlib.uuid4()),
                "name": name,
                "version": f"1.0.{i}",
                "owner": LUKE,
                "public": False,
                "activated": True,
                "disabled": False,
                "state": "active",
                "os": "smartos",
                "type": "zone-dataset",
                "published_at": published,  # pairs share a timestamp: ties broken by uuid
                "files": [{"stor": "local", "sha1": "0" * 40, "size": 42, "compression": "gzip"}],
            }
        )
    cli_stack.catalog.store_many(records)
    listed = cli.json("list", "--name", name, "--json")
    assert len(listed) == 2005
    assert len({i["uuid"] for i in listed}) == 2005
    assert {i["uuid"] for i in listed} == {r["uuid"] for r in records}
    assert len(cli.json("list", "--name", name, "--limit", "7", "--json")) == 7
    desc = cli.json("list", "--name", name, "--sort", "published_at.desc", "--json")
    assert [i["uuid"] for i in desc] == [i["uuid"] for i in reversed(listed)]


def test_help_lists_every_command(cli: Cli) -> None:
    out = cli("--help").stdout
    for name in (
        "list", "get", "create", "upload", "download", "activate", "disable", "enable", "update",
        "delete", "acl", "icon", "import-remote", "channels", "serve",
    ):  # fmt: skip
        assert f" {name} " in out, name
    assert "--data-dir" in cli("serve", "--help").stdout  # imgapi_cli/serve.py's options
