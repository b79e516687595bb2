"""The ``imgapi`` commands on image manifests: list, get, create, update, delete, the state actions,
ACLs, icons and channels. Registered on the root command by :mod:`imgapi_cli.main`."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from imgapi_cli import output
from imgapi_cli.file_commands import upload_file
from imgapi_cli.habits import cell, columns, parse_filters, project, read_manifest, sort_rows, usage
from imgapi_cli.options import JsonOpt, ProgressOpt, UuidArg, handled, parse_sets

acl_app = typer.Typer(help="Add accounts to or remove them from an image's ACL.", no_args_is_help=True)
icon_app = typer.Typer(help="Set, get or delete an image icon.", no_args_is_help=True)
channels_app = typer.Typer(help="Channels of a channel-enabled server.", no_args_is_help=True)


def ping_cmd(ctx: typer.Context) -> None:
    """Ping the server."""
    with handled(ctx) as g:
        output.print_json(g.client().ping())


def list_cmd(
    ctx: typer.Context,
    filter_args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE",
            help="ListImages filters, imgadm style: name=~base os=smartos tag.role=os.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Exact name, or ~substring.")] = None,
    version: Annotated[str | None, typer.Option(help="Exact version, or ~substring.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner UUID.")] = None,
    state: Annotated[
        str | None, typer.Option(help="active (default), disabled, unactivated, creating, failed, all.")
    ] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Image type, or !type to exclude.")] = None,
    os_: Annotated[str | None, typer.Option("--os", help="Image OS.")] = None,
    public: Annotated[bool | None, typer.Option("--public/--private", help="Only public/private.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE tag filter (repeatable).")] = None,
    billing_tag: Annotated[list[str] | None, typer.Option("--billing-tag", help="Repeatable.")] = None,
    limit: Annotated[
        int | None, typer.Option(help="One page of at most LIMIT (no marker following).")
    ] = None,
    marker: Annotated[str | None, typer.Option(help="Start at this image UUID or date (inclusive).")] = None,
    sort: Annotated[str | None, typer.Option(help="published_at.asc or published_at.desc.")] = None,
    admin_fields: Annotated[bool, typer.Option("--admin-fields", help="inclAdminFields=true.")] = False,
    fields: Annotated[
        str | None, typer.Option("--fields", "-o", help="Comma-separated fields to show (table and JSON).")
    ] = None,
    no_header: Annotated[bool, typer.Option("--no-header", "-H", help="Table without its header.")] = False,
    sort_by: Annotated[
        str | None, typer.Option("--sort-by", "-s", help="Sort by fields (-name reverses): -s name,version.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List images (follows markers in pages of 1000 unless --limit is given; then the next marker is
    printed on stderr)."""
    with handled(ctx) as g:
        filters: dict[str, str | list[str] | None] = {
            "name": name,
            "version": version,
            "owner": owner,
            "state": state,
            "type": type_,
            "os": os_,
            "public": None if public is None else ("true" if public else "false"),
            "marker": marker,
            "sort": sort,
            "inclAdminFields": "true" if admin_fields else None,
            "billing_tag": billing_tag or None,
        }
        for item in tag or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise usage(f"--tag expects KEY=VALUE, got {item!r}")
            filters[f"tag.{key}"] = value
        filters.update(parse_filters(filter_args))
        if marker is not None and limit is None:
            limit = 1000
        if limit is not None and limit < 1:
            raise usage("--limit must be at least 1")
        # The marker is inclusive: ask for one more and drop the marker image itself.
        extra = 1 if marker is not None else 0
        images = list(g.client().list_images(filters, limit=None if limit is None else limit + extra))
        if extra and images and images[0].get("uuid") == marker:
            images = images[1:]
        if limit is not None:
            full = len(images) >= limit
            images = images[:limit]
            if full and images:
                output.note(f"more images: next page with --marker {images[-1]['uuid']}")
        images = sort_rows(images, sort_by)
        if g.json or json_out:
            output.print_json(project(images, fields))
        else:
            cols = columns(fields, output.IMAGE_COLUMNS)
            rows = [[output.flags(i) if c == "flags" else cell(i, c) for c in cols] for i in images]
            output.print_table(cols, rows, header=not no_header)


def get_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    admin_fields: Annotated[bool, typer.Option("--admin-fields", help="inclAdminFields=true.")] = False,
) -> None:
    """Show an image manifest (JSON)."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        output.print_image(g.client().get_image(uuid, admin_fields=admin_fields), g.json)


#: Fields of a GetImage answer that CreateImage refuses (server-managed).
SERVER_FIELDS = ("uuid", "state", "files", "icon", "published_at", "urn", "channels")


def create_cmd(
    ctx: typer.Context,
    manifest: Annotated[
        str | None, typer.Option("--manifest", "-m", help="Manifest JSON file ('-' = stdin).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Image name.")] = None,
    version: Annotated[str | None, typer.Option(help="Image version.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="zone-dataset, zvol, lx-dataset, ...")] = None,
    os_: Annotated[str | None, typer.Option("--os", help="smartos, linux, windows, ...")] = None,
    description: Annotated[str | None, typer.Option(help="Description.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner UUID (defaults to --account).")] = None,
    public: Annotated[bool | None, typer.Option("--public/--private", help="Public image.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="KEY=STRING or KEY:=JSON.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Upload this file afterwards ('-' = stdin).")
    ] = None,
    compression: Annotated[str | None, typer.Option(help="Compression of --file.")] = None,
    activate: Annotated[bool, typer.Option("--activate", help="Activate after the upload.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Create an (unactivated) image from a manifest file and/or flags; optionally upload and activate."""
    with handled(ctx) as g:
        body: dict[str, Any] = {}
        if manifest:
            loaded = read_manifest(manifest)
            if not isinstance(loaded, dict):
                raise usage(f"{manifest}: the manifest must be a JSON object")
            dropped = [k for k in SERVER_FIELDS if k in loaded]
            for k in dropped:
                loaded.pop(k)
            if dropped:
                output.note(f"ignoring server-managed fields of the manifest: {', '.join(dropped)}")
            body.update(loaded)
        flags = {"name": name, "version": version, "type": type_, "os": os_, "description": description}
        body.update({k: v for k, v in flags.items() if v is not None})
        if owner is not None:
            body["owner"] = owner
        if public is not None:
            body["public"] = public
        body.update(parse_sets(sets))
        client = g.client()
        image = client.create_image(body)
        if file is not None:
            reporter = output.RichReporter(progress and not g.json)
            image = upload_file(client, image["uuid"], file, compression=compression, reporter=reporter).image
        if activate:
            image = client.activate(image["uuid"])
        output.print_image(image, g.json)


def simple_action(name: str, doc: str) -> Callable[[typer.Context, str], None]:
    """A command that runs image action ``name`` and prints the image."""

    def command(ctx: typer.Context, uuid: UuidArg) -> None:
        with handled(ctx) as g:
            uuid = g.image(uuid)
            output.print_image(g.client().action(uuid, name), g.json)

    command.__doc__ = doc
    command.__name__ = f"{name}_cmd"
    return command


def update_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    changes: Annotated[
        str | None, typer.Argument(help="JSON object file of changes ('-' = stdin).", show_default=False)
    ] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="KEY=STRING or KEY:=JSON.")] = None,
    if_match: Annotated[str | None, typer.Option(help="Only if the image ETag matches.")] = None,
) -> None:
    """Update manifest fields (UpdateImage)."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        body: dict[str, Any] = {}
        if changes is not None:
            loaded = read_manifest(changes)
            if not isinstance(loaded, dict):
                raise usage("the changes must be a JSON object")
            body.update(loaded)
        body.update(parse_sets(sets))
        if not body:
            raise usage("nothing to update: give a JSON file or --set")
        output.print_image(g.client().update(uuid, body, if_match=if_match), g.json)


def delete_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    force_all_channels: Annotated[
        bool, typer.Option("--force-all-channels", help="Delete from every channel.")
    ] = False,
) -> None:
    """Delete an image (on channel servers: from the current channel unless --force-all-channels)."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        client = g.client()
        channels = [] if force_all_channels else client.get_image(uuid).get("channels") or []
        client.delete(uuid, force_all_channels=True if force_all_channels else None)
        left = None
        if len(channels) > 1:  # a channel server removes it from the current channel only
            current = g.channel or next((c["name"] for c in client.list_channels() if c.get("default")), "")
            left = [c for c in channels if c != current]
            if current not in channels:
                left = None
        if g.json:
            gone = {"uuid": uuid, "deleted": left is None}
            output.print_json(gone if left is None else {**gone, "channel": current, "still_in": left})
        elif left is None:
            output.note(f"deleted image {uuid}")
        else:
            output.note(
                f"removed image {uuid} from channel {current}; it is still in {', '.join(left)} "
                "(--force-all-channels deletes it everywhere)"
            )


AccountsArg = Annotated[list[str], typer.Argument(help="Account UUIDs.", show_default=False)]


@acl_app.command("add")
def acl_add(ctx: typer.Context, uuid: UuidArg, accounts: AccountsArg) -> None:
    """Add accounts to the image ACL."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        output.print_image(g.client().acl(uuid, "add", accounts), g.json)


@acl_app.command("remove")
def acl_remove(ctx: typer.Context, uuid: UuidArg, accounts: AccountsArg) -> None:
    """Remove accounts from the image ACL."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        output.print_image(g.client().acl(uuid, "remove", accounts), g.json)


ICON_TYPES = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
ICON_MAGIC = ((b"\x89PNG", "image/png"), (b"GIF8", "image/gif"), (b"\xff\xd8\xff", "image/jpeg"))


@icon_app.command("set")
def icon_set(
    ctx: typer.Context,
    uuid: UuidArg,
    file: Annotated[Path, typer.Argument(help="PNG, GIF or JPEG (at most 128 KiB).", show_default=False)],
    content_type: Annotated[str | None, typer.Option(help="Default: from the file content.")] = None,
) -> None:
    """Set the image icon."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        data = file.read_bytes()
        ctype = content_type or next((t for magic, t in ICON_MAGIC if data.startswith(magic)), None)
        ctype = ctype or ICON_TYPES.get(file.suffix.lower()) or mimetypes.guess_type(file.name)[0]
        if not ctype:
            raise usage(f"cannot tell the content type of {file}; pass --content-type")
        output.print_image(g.client().put_icon(uuid, data, ctype), g.json)


@icon_app.command("get")
def icon_get(
    ctx: typer.Context,
    uuid: UuidArg,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Default <uuid>-icon.<ext>.")] = None,
) -> None:
    """Download the image icon (Content-MD5 verified)."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        data, ctype = g.client().get_icon(uuid)
        ext = {v: k for k, v in ICON_TYPES.items()}.get(ctype, ".img")
        dest = out or Path(f"{uuid}-icon{ext}")
        dest.write_bytes(data)
        if g.json:
            output.print_json({"path": str(dest), "size": len(data), "content_type": ctype})
        else:
            output.note(f"saved {dest} ({len(data)} bytes, {ctype})")


@icon_app.command("delete")
def icon_delete(ctx: typer.Context, uuid: UuidArg) -> None:
    """Delete the image icon."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        output.print_image(g.client().delete_icon(uuid), g.json)


@channels_app.command("list")
def channels_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the server's channels."""
    with handled(ctx) as g:
        output.print_channels(g.client().list_channels(), g.json or json_out)


@channels_app.command("add-image")
def channels_add_image(
    ctx: typer.Context,
    uuid: UuidArg,
    channel: Annotated[str, typer.Argument(help="Channel to add the image to.", show_default=False)],
) -> None:
    """Add an image to a channel (ChannelAddImage; --channel selects where it is looked up)."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        output.print_image(g.client().channel_add(uuid, channel), g.json)
