"""The command-line habits of ``sdc-imgadm`` / ``imgadm`` users, in one place.

- :class:`ImgapiGroup`: ``-j``/``--json`` is accepted anywhere on the line (``imgapi get U -j``), as
  the global option it is;
- :func:`parse_filters`: positional ``key=value`` ListImages filters (``name=~base os=smartos``);
- :func:`select_rows`: ``-o`` field selection, ``-s`` sorting, for tables and JSON alike;
- :func:`resolve_image`: ``name@version`` (or a bare name) wherever an image uuid is accepted; an
  ambiguous reference is an error listing the candidates;
- :func:`read_manifest`: a manifest file read with a size bound and a clear error when it is not
  JSON (``create -m disk.zvol`` must not read 300 MB and die on a UnicodeDecodeError).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from imgapi_cli.client import Client, CliError

_JSON_FLAGS = ("-j", "--json")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: A manifest is a small JSON document; anything larger is a mistake (an image file given to -m).
MAX_MANIFEST_BYTES = 1024 * 1024


def usage(message: str) -> CliError:
    return CliError("Usage", message)


def hoist_json(args: list[str]) -> list[str]:
    """Move every ``-j``/``--json`` (before a ``--``) to the front, where the global option is parsed."""
    if "--" in args:
        cut = args.index("--")
        head, tail = args[:cut], args[cut:]
    else:
        head, tail = args, []
    if not any(a in _JSON_FLAGS for a in head):
        return args
    return ["--json", *(a for a in head if a not in _JSON_FLAGS), *tail]


class ImgapiGroup(TyperGroup):
    """The root command group: ``-j`` anywhere means JSON output."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's vendored click Context
        if ctx.parent is None:
            args = hoist_json(list(args))
        return super().parse_args(ctx, args)


def root_json(ctx: typer.Context) -> bool:
    """Whether ``-j`` was given (anywhere) for the running command."""
    return bool(ctx.find_root().params.get("json_out"))


def parse_filters(items: list[str] | None) -> dict[str, str | list[str]]:
    """``key=value`` ListImages filters; a repeated key (``billing_tag``) becomes a list."""
    out: dict[str, str | list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise usage(f"filters are KEY=VALUE (e.g. name=~base os=smartos), got {item!r}")
        if key in out:
            prev = out[key]
            out[key] = [*(prev if isinstance(prev, list) else [prev]), value]
        else:
            out[key] = value
    return out


def _field(row: dict[str, Any], name: str) -> Any:
    value: Any = row
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if isinstance(value, bool | int | float):
        return (0, value)
    return (1, str(value))


def sort_rows(rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    """``-s name,-published_at``: sort by fields in order; a leading ``-`` reverses one field."""
    if not sort:
        return rows
    out = list(rows)
    for spec in reversed([s.strip() for s in sort.split(",") if s.strip()]):
        name = spec.lstrip("-")

        def key(row: dict[str, Any], name: str = name) -> tuple[int, Any]:
            return _sort_key(_field(row, name))

        out.sort(key=key, reverse=spec.startswith("-"))
    return out


def columns(fields: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if not fields:
        return default
    cols = tuple(f.strip() for f in fields.split(",") if f.strip())
    if not cols:
        raise usage("-o needs a comma-separated list of fields (e.g. -o uuid,name,version)")
    return cols


def project(rows: list[dict[str, Any]], fields: str | None) -> list[dict[str, Any]]:
    """JSON output with ``-o``: only the selected fields of each row."""
    if not fields:
        return rows
    cols = columns(fields, ())
    return [{c: _field(r, c) for c in cols} for r in rows]


def cell(row: dict[str, Any], name: str) -> str:
    value = _field(row, name)
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def is_uuid(ref: str) -> bool:
    return bool(_UUID_RE.match(ref))


def resolve_image(client: Client, ref: str) -> str:
    """An image uuid from ``ref``: a uuid as is, else ``name@version`` or a bare ``name``.

    Looked up with ListImages (``state=all``, on behalf of the same account and channel). No match
    is a ``ResourceNotFound``; several are an ``AmbiguousImage`` error listing them.
    """
    if is_uuid(ref):
        return ref
    name, _, version = ref.partition("@")
    if not name:
        raise usage(f"{ref!r} is neither an image uuid nor NAME[@VERSION]")
    filters: dict[str, str | list[str]] = {"name": name, "state": "all"}
    if version:
        filters["version"] = version
    found = list(client.list_images(filters))
    if not found:
        raise CliError("ResourceNotFound", f"no image named {ref} (give a uuid or NAME@VERSION)")
    if len(found) > 1:
        listed = ", ".join(f"{i['uuid']} ({i.get('name')}@{i.get('version')})" for i in found[:20])
        more = f" and {len(found) - 20} more" if len(found) > 20 else ""
        hint = "use a uuid" if version else "add @VERSION or use a uuid"
        raise CliError("AmbiguousImage", f"{ref} matches {len(found)} images ({hint}): {listed}{more}")
    return str(found[0]["uuid"])


def read_manifest(path: str, what: str = "manifest") -> Any:
    """A JSON document from a file (``-`` = stdin), refused early when it cannot be one."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_MANIFEST_BYTES + 1)
    else:
        p = Path(path)
        try:
            size = p.stat().st_size
        except OSError as e:
            raise usage(f"{path}: {e.strerror or e}") from None
        if size > MAX_MANIFEST_BYTES:
            raise usage(
                f"{path} is {size} bytes: a {what} is a small JSON file (at most {MAX_MANIFEST_BYTES}"
                " bytes). Is it an image file? Give that with -f/--file."
            )
        with p.open("rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise usage(f"{path}: a {what} is at most {MAX_MANIFEST_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise usage(f"{path} is not a JSON {what} (binary content). Is it an image file? Use -f.") from None
    except ValueError as e:
        raise usage(f"{path}: invalid JSON: {e}") from None
