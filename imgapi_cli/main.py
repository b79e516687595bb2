"""The ``imgapi`` command: a client of any IMGAPI-compatible server over REST (docs/cli.md).

This module is the command table: the root options and every command's name. The commands live in
:mod:`imgapi_cli.image_commands` (manifests), :mod:`imgapi_cli.file_commands` (image files),
:mod:`imgapi_cli.replicate` and :mod:`imgapi_cli.serve`; what they share in :mod:`imgapi_cli.options`.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from imgapi_cli import file_commands as files
from imgapi_cli import image_commands as images
from imgapi_cli.habits import ImgapiGroup
from imgapi_cli.options import DEFAULT_URL, Globals
from imgapi_cli.replicate import replicate_app
from imgapi_cli.serve import serve_command

app = typer.Typer(
    name="imgapi",
    help="Client of IMGAPI-compatible image registries (this project's gateway or Joyent's IMGAPI).",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    cls=ImgapiGroup,  # -j anywhere on the line
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(images.acl_app, name="acl")
app.add_typer(images.icon_app, name="icon")
app.add_typer(images.channels_app, name="channels")
app.add_typer(replicate_app, name="replicate")


def _version(value: bool) -> None:
    if value:
        print(f"imgapi {importlib.metadata.version('imgapi')}")
        raise typer.Exit(0)


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


#: Every top-level command, in the order of ``imgapi --help``.
COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("ping", images.ping_cmd),
    ("list", images.list_cmd),
    ("get", images.get_cmd),
    ("create", images.create_cmd),
    ("upload", files.upload_cmd),
    ("download", files.download_cmd),
    ("activate", images.simple_action("activate", "Activate an image (it must have a file).")),
    ("disable", images.simple_action("disable", "Disable an image.")),
    ("enable", images.simple_action("enable", "Enable a disabled image.")),
    ("update", images.update_cmd),
    ("delete", images.delete_cmd),
    ("import-remote", files.import_remote_cmd),
    ("import-docker", files.import_docker_cmd),
    ("import", files.import_cmd),
    ("export", files.export_cmd),
)
for _name, _command in COMMANDS:
    app.command(_name)(_command)


def _serve(*args: Any, **kwargs: Any) -> None:
    raise typer.Exit(serve_command(*args, **kwargs) or 0)


# `imgapi serve` (imgapi_cli/serve.py): the wrapper keeps serve_command's parameters as options
# (functools.wraps) and turns its return value into the exit status.
app.command(
    "serve", help="Run catalog + blob + replication + gateway on this machine (the embedded default)."
)(functools.wraps(serve_command)(_serve))


if __name__ == "__main__":  # pragma: no cover
    app()
