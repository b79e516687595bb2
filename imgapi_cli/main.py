"""The ``imgapi`` command: a client of any IMGAPI-compatible server over REST (docs/cli.md)."""

from __future__ import annotations

import functools
import getpass
import importlib.metadata
import json
import mimetypes
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from imgapi_cli import docker, output
from imgapi_cli.agent import Agent
from imgapi_cli.auth import SignatureAuth, load_key
from imgapi_cli.client import Client, ImgapiError
from imgapi_cli.habits import (
    ImgapiGroup,
    cell,
    columns,
    parse_filters,
    project,
    read_manifest,
    resolve_image,
    sort_rows,
)
from imgapi_cli.profiles import load_profile
from imgapi_cli.replicate import replicate_app
from imgapi_cli.serve import serve_command
from imgapi_cli.streams import STDIO, download_to_stream, stdin_file, upload_from_stream
from imgapi_cli.transfer import (
    DEFAULT_CHUNK_SIZE,
    TransferInterrupted,
    UploadResult,
    download,
    parse_rate,
    upload,
)

DEFAULT_URL = "http://127.0.0.1:8080"

#: Exit statuses: 1 = an error (IMGAPI code printed), 2 = bad usage, 3 = transfer interrupted (rerun),
#: 130 = interrupted by Ctrl-C (docs/cli.md).
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3
EXIT_CTRL_C = 130

app = typer.Typer(
    name="imgapi",
    help="Client of IMGAPI-compatible image registries (this project's gateway or Joyent's IMGAPI).",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    cls=ImgapiGroup,  # -j anywhere on the line
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
acl_app = typer.Typer(help="Add accounts to or remove them from an image's ACL.", no_args_is_help=True)
icon_app = typer.Typer(help="Set, get or delete an image icon.", no_args_is_help=True)
channels_app = typer.Typer(help="Channels of a channel-enabled server.", no_args_is_help=True)
app.add_typer(acl_app, name="acl")
app.add_typer(icon_app, name="icon")
app.add_typer(channels_app, name="channels")
app.add_typer(replicate_app, name="replicate")


@dataclass
class Globals:
    """The global options; unset ones come from the profile (imgapi_cli/profiles.py), then defaults."""

    url: str | None = None
    account: str | None = None
    channel: str | None = None
    json: bool = False
    timeout: float | None = None
    user: str | None = None
    key: Path | None = None
    key_id: str | None = None
    profile: str | None = None
    _client: Client | None = field(default=None, repr=False)

    def _apply_profile(self) -> None:
        prof = load_profile(self.profile)
        self.url = self.url or prof.get("url") or DEFAULT_URL
        self.account = self.account or prof.get("account")
        self.channel = self.channel or prof.get("channel")
        self.user = self.user or prof.get("user")
        self.key_id = self.key_id or prof.get("key_id")
        if self.key is None and prof.get("key"):
            self.key = Path(prof["key"]).expanduser()
        if self.timeout is None:
            try:
                self.timeout = float(prof.get("timeout") or 60.0)
            except ValueError:
                raise _usage(f"profile timeout must be a number, got {prof['timeout']!r}") from None

    def _auth(self) -> SignatureAuth | None:
        if not (self.user or self.key or self.key_id):
            return None
        if not self.user:
            raise _usage("HTTP Signature auth needs --user (the keyId) with --key or --key-id")
        if self.key is not None:
            prompt = getpass.getpass if sys.stdin.isatty() else None
            passphrase = os.environ.get("IMGAPI_KEY_PASSPHRASE")
            return SignatureAuth(self.user, load_key(self.key, passphrase, prompt, self.key_id))
        if not self.key_id:
            raise _usage("HTTP Signature auth needs --key FILE or --key-id FINGERPRINT (ssh-agent)")
        agent = Agent()
        return SignatureAuth(self.user, agent=agent, agent_key=agent.find(self.key_id))

    def client(self) -> Client:
        if self._client is None:
            self._apply_profile()
            assert self.url is not None and self.timeout is not None
            self._client = Client(
                self.url, account=self.account, channel=self.channel, timeout=self.timeout, auth=self._auth()
            )
        return self._client

    def image(self, ref: str) -> str:
        """The uuid of an image given as a uuid, NAME@VERSION or NAME (habits.resolve_image)."""
        return resolve_image(self.client(), ref)


def _version(value: bool) -> None:
    if value:
        print(f"imgapi {importlib.metadata.version('imgapi')}")
        raise typer.Exit(0)


def _globals(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    if not isinstance(obj, Globals):
        obj = Globals()
        ctx.find_root().obj = obj
    return obj


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", "-u", envvar="IMGAPI_URL", help=f"Server base URL [default: {DEFAULT_URL}]"),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option("--account", "-a", envvar="IMGAPI_ACCOUNT", help="Act on behalf of this account UUID."),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option("--channel", "-c", envvar="IMGAPI_CHANNEL", help="Channel (channel servers)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", "-j", help="JSON output (and JSON errors).")] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Per-request timeout in seconds [default: 60].")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", envvar="IMGAPI_USER", help="HTTP Signature auth: user name (keyId)."),
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", envvar="IMGAPI_KEY", help="HTTP Signature auth: private key file.")
    ] = None,
    key_id: Annotated[
        str | None,
        typer.Option(
            "--key-id",
            envvar="IMGAPI_KEY_ID",
            help="Key fingerprint (SHA256:... or MD5 aa:bb:..): the ssh-agent key to sign with, or the one --key must be.",
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", "-p", envvar="IMGAPI_PROFILE", help="Profile of ~/.config/imgapi/config.toml."
        ),
    ] = None,
    _show_version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    ctx.obj = Globals(
        url=url,
        account=account,
        channel=channel,
        json=json_out,
        timeout=timeout,
        user=user,
        key=key,
        key_id=key_id,
        profile=profile,
    )
    ctx.call_on_close(lambda: ctx.obj.client().close() if ctx.obj._client else None)


@contextmanager
def handled(ctx: typer.Context) -> Iterator[Globals]:
    """Run a command body: IMGAPI errors are printed (code + message) and exit non-zero."""
    g = _globals(ctx)
    try:
        yield g
    except TransferInterrupted as e:
        output.print_error(e, g.json)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt as e:
        if not getattr(e, "reported", False):  # a transfer already said "interrupted; rerun..."
            output.note("interrupted")
        raise typer.Exit(EXIT_CTRL_C) from None
    except ImgapiError as e:
        output.print_error(e, g.json)
        raise typer.Exit(EXIT_USAGE if e.code == "Usage" else EXIT_ERROR) from None
    except OSError as e:
        output.print_error(ImgapiError("LocalError", str(e)), g.json)
        raise typer.Exit(EXIT_ERROR) from None


def _usage(message: str) -> ImgapiError:
    return ImgapiError("Usage", message)


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``k=v`` sets the string v; ``k:=json`` sets a JSON value (``public:=true``, ``tags:={"a":1}``)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _usage(f"--set expects KEY=VALUE or KEY:=JSON, got {item!r}")
        if key.endswith(":"):
            key = key[:-1]
            try:
                out[key] = json.loads(value)
            except ValueError as e:
                raise _usage(f"--set {key}:= needs a JSON value: {e}") from None
        else:
            out[key] = value
    return out


def read_json(path: str) -> Any:
    return read_manifest(path)


UuidArg = Annotated[str, typer.Argument(help="Image UUID, NAME@VERSION or NAME.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", "-j", help="JSON output.")]
RateOpt = Annotated[str | None, typer.Option(help="Bandwidth limit in bytes/s (500K, 2M...).")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]


# --- reading --------------------------------------------------------------------------------------------


@app.command("ping")
def ping_cmd(ctx: typer.Context) -> None:
    """Ping the server."""
    with handled(ctx) as g:
        output.print_json(g.client().ping())


@app.command("list")
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
                raise _usage(f"--tag expects KEY=VALUE, got {item!r}")
            filters[f"tag.{key}"] = value
        filters.update(parse_filters(filter_args))
        if marker is not None and limit is None:
            limit = 1000
        if limit is not None and limit < 1:
            raise _usage("--limit must be at least 1")
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


@app.command("get")
def get_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    admin_fields: Annotated[bool, typer.Option("--admin-fields", help="inclAdminFields=true.")] = False,
) -> None:
    """Show an image manifest (JSON)."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        output.print_image(g.client().get_image(uuid, admin_fields=admin_fields), g.json)


# --- writing --------------------------------------------------------------------------------------------

#: Fields of a GetImage answer that CreateImage refuses (server-managed).
SERVER_FIELDS = ("uuid", "state", "files", "icon", "published_at", "urn", "channels")


@app.command("create")
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
            loaded = read_json(manifest)
            if not isinstance(loaded, dict):
                raise _usage(f"{manifest}: the manifest must be a JSON object")
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
            image = _upload(client, image["uuid"], file, compression=compression, reporter=reporter).image
        if activate:
            image = client.activate(image["uuid"])
        output.print_image(image, g.json)


@app.command("upload")
def upload_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    file: Annotated[
        Path,
        typer.Argument(help="The image file ('-' = stdin: resumable only when a file).", show_default=False),
    ],
    compression: Annotated[
        str | None, typer.Option(help="gzip, bzip2, xz or none (default: from the file extension).")
    ] = None,
    sha1: Annotated[str | None, typer.Option(help="Known SHA-1 (else computed).")] = None,
    dataset_guid: Annotated[str | None, typer.Option(help="ZFS dataset GUID.")] = None,
    storage: Annotated[str | None, typer.Option(help="Storage preference (operators).")] = None,
    method: Annotated[
        str, typer.Option(help="auto (tus when offered), tus (resumable) or put (one request).")
    ] = "auto",
    chunk_size: Annotated[int, typer.Option(help="tus PATCH size in bytes.")] = DEFAULT_CHUNK_SIZE,
    state_dir: Annotated[
        Path | None, typer.Option(help="Resume state directory (default ~/.cache/imgapi).")
    ] = None,
    limit_rate: RateOpt = None,
    progress: ProgressOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Upload an image file (resumable with tus: rerun an interrupted upload to continue it)."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        if method not in ("auto", "tus", "put"):
            raise _usage("--method must be auto, tus or put")
        if chunk_size <= 0:
            raise _usage("--chunk-size must be positive")
        as_json = g.json or json_out
        result = _upload(
            g.client(),
            uuid,
            file,
            compression=compression,
            sha1=sha1,
            dataset_guid=dataset_guid,
            storage=storage,
            method=method,
            chunk_size=chunk_size,
            state_dir=state_dir,
            reporter=output.RichReporter(progress and not as_json),
            limit_rate=parse_rate(limit_rate) if limit_rate else None,
        )
        if as_json:
            output.print_json({**result.summary(), "image": result.image})
        else:
            how = "tus" if result.method == "tus" else "PUT"
            resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
            output.note(
                f"uploaded {file} to {uuid} ({result.size} bytes, sha1 {result.sha1}, "
                f"compression {result.compression}, via {how}{resumed})"
            )


@app.command("download")
def download_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Destination (default <uuid>-file[.ext]; '-' = stdout)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue a partial download.")] = True,
    limit_rate: RateOpt = None,
    progress: ProgressOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Download an image file; resumes with Range and verifies Content-MD5 and the manifest sha1."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        as_json = g.json or json_out
        reporter = output.RichReporter(progress and not as_json)
        rate = parse_rate(limit_rate) if limit_rate else None
        if out is not None and str(out) == STDIO:  # the bytes to stdout, messages to stderr
            result = download_to_stream(
                g.client(), uuid, sys.stdout.buffer, reporter=reporter, limit_rate=rate
            )
        else:
            result = download(g.client(), uuid, out, resume=resume, reporter=reporter, limit_rate=rate)
        if as_json and str(result.path) == STDIO:  # stdout carries the file: the summary goes to stderr
            sys.stderr.write(json.dumps(result.summary(), indent=2) + "\n")
        elif as_json:
            output.print_json(result.summary())
        elif str(result.path) == STDIO:
            output.note(
                f"wrote {result.size} bytes to stdout (sha1 {result.sha1}, MD5 {result.md5} verified)"
            )
        else:
            resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
            output.note(
                f"saved {result.path} ({result.size} bytes, sha1 {result.sha1}, MD5 {result.md5} verified"
                f"{resumed})"
            )


def _upload(client: Client, uuid: str, file: Path, **kw: Any) -> UploadResult:
    """``upload``: a file (resumable), or stdin: reopened as a file when it is one, else streamed."""
    if str(file) != STDIO:
        return upload(client, uuid, file, **kw)
    reopened = stdin_file()
    if reopened is not None:
        return upload(client, uuid, reopened, **kw)
    if not kw.get("compression"):
        raise _usage("reading a pipe: give --compression (gzip, bzip2, xz or none)")
    if kw.get("method") == "tus":
        raise _usage("a pipe cannot be uploaded with tus (it cannot be resumed); use a file")
    return upload_from_stream(
        client,
        uuid,
        sys.stdin.buffer,
        compression=str(kw["compression"]),
        sha1=kw.get("sha1"),
        dataset_guid=kw.get("dataset_guid"),
        storage=kw.get("storage"),
        reporter=kw.get("reporter"),
        limit_rate=kw.get("limit_rate"),
    )


def _simple_action(name: str, doc: str) -> None:
    def command(ctx: typer.Context, uuid: UuidArg) -> None:
        with handled(ctx) as g:
            uuid = g.image(uuid)
            output.print_image(g.client().action(uuid, name), g.json)

    command.__doc__ = doc
    command.__name__ = f"{name}_cmd"
    app.command(name)(command)


_simple_action("activate", "Activate an image (it must have a file).")
_simple_action("disable", "Disable an image.")
_simple_action("enable", "Enable a disabled image.")


@app.command("update")
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
            loaded = read_json(changes)
            if not isinstance(loaded, dict):
                raise _usage("the changes must be a JSON object")
            body.update(loaded)
        body.update(parse_sets(sets))
        if not body:
            raise _usage("nothing to update: give a JSON file or --set")
        output.print_image(g.client().update(uuid, body, if_match=if_match), g.json)


@app.command("delete")
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
            raise _usage(f"cannot tell the content type of {file}; pass --content-type")
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


@app.command("import-remote")
def import_remote_cmd(
    ctx: typer.Context,
    uuid: Annotated[str, typer.Argument(help="UUID of the image on the source.", show_default=False)],
    source: Annotated[str, typer.Option("--source", "-s", help="Base URL of the source IMGAPI.")],
    skip_owner_check: Annotated[bool, typer.Option("--skip-owner-check", help="Operators only.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Poll the job until it ends.")] = True,
    interval: Annotated[float, typer.Option(help="Seconds between job polls.")] = 2.0,
    wait_timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds.")] = 3600.0,
) -> None:
    """Import an image (and its missing origins) from another IMGAPI (AdminImportRemoteImage)."""
    with handled(ctx) as g:
        client = g.client()
        started, wfapi = client.import_remote(uuid, source, skip_owner_check=skip_owner_check or None)
        job_uuid = str(started["job_uuid"])
        if not wait:
            output.print_json({**started, "workflow_api": wfapi})
            return
        deadline = time.monotonic() + wait_timeout
        failures = 0
        console = output.stderr()
        with console.status(f"import job {job_uuid}: queued", spinner="dots") as status:
            while True:
                try:
                    job = client.get_job(wfapi, job_uuid)
                    failures = 0
                except ImgapiError:
                    failures += 1  # like the node client: a few failed polls are tolerated
                    if failures >= 5:
                        raise
                    job = {}
                execution = job.get("execution", "?")
                status.update(f"import job {job_uuid}: {execution}")
                if execution in ("succeeded", "failed", "canceled"):
                    break
                if time.monotonic() > deadline:
                    raise ImgapiError("Timeout", f"job {job_uuid} still {execution} after {wait_timeout}s")
                time.sleep(interval)
        results = job.get("chain_results") or [{}]
        err = results[-1].get("error") if isinstance(results[-1], dict) else None
        if execution != "succeeded" or err:
            message = err.get("message", json.dumps(err)) if isinstance(err, dict) else str(err or execution)
            raise ImgapiError("JobFailed", f"import job {job_uuid} {execution}: {message}")
        image_uuid = str(started.get("image_uuid") or uuid)
        output.print_image(client.get_image(image_uuid), g.json)


@app.command("import-docker")
def import_docker_cmd(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="REPO[:TAG|@DIGEST], e.g. quay.io/coreos/etcd:v3.5.0.")],
    public: Annotated[
        bool | None, typer.Option("--public/--private", help="public value of new layer images.")
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Registry user; the password is read from IMGAPI_REGISTRY_PASSWORD.")
    ] = None,
    progress: ProgressOpt = True,
) -> None:
    """Pull a Docker image from its registry into layer images (AdminImportDockerImage; operators)."""
    with handled(ctx) as g:
        client = g.client()
        auth = (
            docker.registry_auth(username, os.environ.get("IMGAPI_REGISTRY_PASSWORD", ""))
            if username
            else None
        )
        created = docker.import_docker(
            client, reference, public=public, auth=auth, progress=progress and not g.json
        )
        output.print_image(client.get_image(str(created["image_uuid"])), g.json)


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    manifest: Annotated[str, typer.Argument(help="Manifest JSON file (an .imgmanifest; '-' = stdin).")],
    file: Annotated[
        Path | None, typer.Argument(help="The image file (uploaded, then the image is activated).")
    ] = None,
    compression: Annotated[
        str | None, typer.Option(help="Compression of FILE (default: the manifest's, else the extension).")
    ] = None,
    activate: Annotated[
        bool, typer.Option("--activate/--no-activate", help="Activate after the upload.")
    ] = True,
    progress: ProgressOpt = True,
) -> None:
    """Import an image from a local manifest (+ file), keeping its uuid (AdminImportImage; operators)."""
    with handled(ctx) as g:
        loaded = read_json(manifest)
        if not isinstance(loaded, dict) or not isinstance(loaded.get("uuid"), str):
            raise _usage(f"{manifest}: the manifest must be a JSON object with a uuid")
        uuid = loaded["uuid"]
        listed = loaded.get("files") or [{}]
        comp = compression or (listed[0].get("compression") if isinstance(listed[0], dict) else None)
        client = g.client()
        image = client.action(uuid, "import", loaded)
        if file is not None:
            reporter = output.RichReporter(progress and not g.json)
            image = _upload(client, uuid, file, compression=comp, reporter=reporter).image
            if activate:
                image = client.activate(uuid)
        output.print_image(image, g.json)


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    directory: Annotated[Path, typer.Argument(help="Where to write (default: here).")] = Path("."),
    progress: ProgressOpt = True,
) -> None:
    """Write NAME-VERSION.imgmanifest and the image file (NAME-VERSION.zfs[.gz|.bz2|.xz]) to DIRECTORY,
    as imgadm does; ``imgapi import`` takes them back. The download resumes and is verified."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        client = g.client()
        image = client.get_image(uuid)
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{image.get('name')}-{image.get('version')}".replace("/", "_")
        manifest_path = directory / f"{stem}.imgmanifest"
        manifest_path.write_text(json.dumps(image, indent=2) + "\n")
        files = image.get("files") or []
        written: dict[str, Any] = {"manifest": str(manifest_path)}
        if files:
            ext = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz"}.get(str(files[0].get("compression")), "")
            reporter = output.RichReporter(progress and not g.json)
            result = download(client, uuid, directory / f"{stem}.zfs{ext}", reporter=reporter)
            written.update(file=str(result.path), size=result.size, sha1=result.sha1)
        if g.json:
            output.print_json(written)
        else:
            output.note(f"exported {uuid} to {manifest_path}" + (f" and {written['file']}" if files else ""))


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


def _serve(*args: Any, **kwargs: Any) -> None:
    raise typer.Exit(serve_command(*args, **kwargs) or 0)


# `imgapi serve` (imgapi_cli/serve.py): the wrapper keeps serve_command's parameters as options
# (functools.wraps) and turns its return value into the exit status.
app.command(
    "serve", help="Run catalog + blob + replication + gateway on this machine (the embedded default)."
)(functools.wraps(serve_command)(_serve))


if __name__ == "__main__":  # pragma: no cover
    app()
