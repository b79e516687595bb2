"""The habits ``sdc-imgadm`` / ``imgadm`` users bring, through the real ``imgapi`` command:
``-j`` anywhere, ``-o``/``-H``/``-s``, positional ``key=value`` filters, ``name@version`` for a uuid,
``--version``, exit codes (2 = usage), manifests that are not JSON, the next marker of ``--limit``,
and ``delete`` on a channel server saying what it did."""

from __future__ import annotations

import bz2
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path

from tests.cli.conftest import LUKE, Cli

ZERO = "00000000-0000-0000-0000-000000000000"


def family(cli: Cli, versions: tuple[str, ...] = ("1.0.0", "2.0.0")) -> tuple[str, list[str]]:
    """Images of one fresh name, one per version; returns the name and the uuids (in order)."""
    name = f"fam-{uuidlib.uuid4().hex[:10]}"
    return name, [cli.create(name=name, version=v)["uuid"] for v in versions]


def test_json_flag_anywhere(cli: Cli) -> None:
    u = cli.create()["uuid"]
    for args in (("get", u, "-j"), ("-j", "get", u), ("get", "--json", u)):
        assert cli.json(*args)["uuid"] == u, args
    assert cli.json("ping", "-j")["ping"] == "pong"
    # Errors are JSON too, whichever place -j took.
    r = cli("get", str(uuidlib.uuid4()), "-j", code=1)
    assert json.loads(r.stderr)["code"] == "ResourceNotFound"


def test_version(cli: Cli) -> None:
    assert cli("--version").stdout.strip() == f"imgapi {importlib.metadata.version('imgapi')}"


def test_positional_filters_fields_no_header_and_sort(cli: Cli) -> None:
    name, (u1, u2) = family(cli)
    r = cli("list", f"name={name}", "state=all", "-o", "version,uuid", "-H", "-s", "-version")
    assert r.stdout.split() == ["2.0.0", u2, "1.0.0", u1]
    r = cli("list", f"name=~{name[4:]}", "state=all", "-o", "uuid", "-s", "version")
    assert r.stdout.split() == ["UUID", u1, u2]
    listed = cli.json("list", f"name={name}", "version=2.0.0", "state=all", "-o", "uuid,name", "-j")
    assert listed == [{"uuid": u2, "name": name}]
    r = cli("list", "name", code=2)
    assert "KEY=VALUE" in r.stderr and "Traceback" not in r.stderr


def test_name_at_version_wherever_a_uuid_is_accepted(cli: Cli) -> None:
    name, (u1, u2) = family(cli)
    assert cli.json("get", f"{name}@1.0.0")["uuid"] == u1
    updated = cli.json("update", f"{name}@2.0.0", "--set", "description=second")
    assert updated["uuid"] == u2 and updated["description"] == "second"
    r = cli("get", name, code=1)  # two versions: ambiguous, both listed
    assert "AmbiguousImage" in r.stderr and u1 in r.stderr and u2 in r.stderr
    assert "@VERSION" in r.stderr
    r = cli("get", f"{name}@9.9.9", code=1)
    assert "ResourceNotFound" in r.stderr and f"{name}@9.9.9" in r.stderr
    cli("delete", f"{name}@1.0.0")
    assert cli.json("get", name)["uuid"] == u2  # one left: a bare name is enough


def test_create_with_an_image_file_as_manifest_fails_fast(cli: Cli, tmp_path: Path) -> None:
    big = tmp_path / "disk.zvol"
    with big.open("wb") as f:
        f.truncate(300 * 1024 * 1024)  # sparse: 300 MB that must not be read
    start = time.monotonic()
    r = cli("create", "-m", str(big), code=2)
    assert time.monotonic() - start < 5
    assert "is 314572800 bytes" in r.stderr and "-f/--file" in r.stderr and "Traceback" not in r.stderr
    small = tmp_path / "image.zfs.bz2"
    small.write_bytes(bz2.compress(b"\x00\xff" * 100))
    r = cli("create", "-m", str(small), code=2)
    assert "not a JSON manifest" in r.stderr and "Traceback" not in r.stderr


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert "--set expects" in cli("create", "--set", "novalue", code=2).stderr
    assert cli("list", "--no-such-option", code=2).exit_code == 2


def test_list_limit_prints_the_next_marker(cli: Cli) -> None:
    name, uuids = family(cli, ("1", "2", "3"))
    base = ("list", f"name={name}", "state=all", "-o", "uuid", "-H")
    everything = cli(*base).stdout.split()  # the server's order
    assert sorted(everything) == sorted(uuids)
    first = cli(*base, "--limit", "2")
    assert first.stdout.split() == everything[:2]
    assert f"--marker {everything[1]}" in first.stderr
    second = cli(*base, "--limit", "2", "--marker", everything[1])
    assert second.stdout.split() == everything[2:]  # the marker image is not repeated
    assert "--marker" not in second.stderr  # the last page


def test_delete_on_a_channel_server_says_what_it_did(pub_cli: Cli) -> None:
    made = pub_cli.json(
        *("--account", ZERO, "create", "--name", f"dc-{uuidlib.uuid4().hex[:8]}", "--version", "1"),
        *("--type", "zone-dataset", "--os", "smartos", "--public"),
    )
    u = made["uuid"]
    pub_cli("channels", "add-image", u, "staging")
    r = pub_cli("--channel", "staging", "delete", u)
    assert f"removed image {u} from channel staging; it is still in dev" in r.stderr
    assert "deleted" not in r.stderr
    r = pub_cli("delete", u)
    assert f"deleted image {u}" in r.stderr
    assert "ResourceNotFound" in pub_cli("get", u, code=1).stderr


def test_owner_filter_on_behalf_of_an_account(cli: Cli) -> None:
    name, (u1,) = family(cli, ("1.0.0",))
    listed = cli.json("-a", LUKE, "list", f"name={name}", f"owner={LUKE}", "state=all", "-j")
    assert [i["uuid"] for i in listed] == [u1]


def test_ssrf_refusal_names_the_setting_that_allows_a_host(cli: Cli) -> None:
    r = cli("import-remote", str(uuidlib.uuid4()), "--source", "http://127.0.0.1:9", code=1)
    assert "forbidden address" in r.stderr and "IMGAPI_GATEWAY_REMOTE_ALLOWLIST" in r.stderr


def test_shell_completion(tmp_path: Path) -> None:
    """typer's completion: the script for bash, and the completions it asks the command for."""
    imgapi = str(Path(sys.executable).with_name("imgapi"))
    script = subprocess.run([imgapi, "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "_IMGAPI_COMPLETE=complete_bash" in script.stdout
    env = {**os.environ, "_IMGAPI_COMPLETE": "complete_bash", "COMP_WORDS": "imgapi li", "COMP_CWORD": "1"}
    words = subprocess.run([imgapi], env=env, capture_output=True, text=True, timeout=60).stdout.split()
    assert words == ["list"]
