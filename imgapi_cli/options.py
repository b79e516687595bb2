"""What every ``imgapi`` command shares: the global options (resolved against the profile), the
runner that turns errors into exit statuses, and the argument and option types."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from imgapi_cli import output
from imgapi_cli.agent import Agent
from imgapi_cli.auth import SignatureAuth, load_key
from imgapi_cli.client import Client, CliError
from imgapi_cli.habits import resolve_image, usage
from imgapi_cli.profiles import load_profile
from imgapi_cli.transfer import TransferInterrupted

DEFAULT_URL = "http://127.0.0.1:8080"

#: Exit statuses: 1 = an error (IMGAPI code printed), 2 = bad usage, 3 = transfer interrupted (rerun),
#: 130 = interrupted by Ctrl-C (docs/cli.md).
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3
EXIT_CTRL_C = 130


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
                raise usage(f"profile timeout must be a number, got {prof['timeout']!r}") from None

    def _auth(self) -> SignatureAuth | None:
        if not (self.user or self.key or self.key_id):
            return None
        if not self.user:
            raise usage("HTTP Signature auth needs --user (the keyId) with --key or --key-id")
        if self.key is not None:
            prompt = getpass.getpass if sys.stdin.isatty() else None
            passphrase = os.environ.get("IMGAPI_KEY_PASSPHRASE")
            return SignatureAuth(self.user, load_key(self.key, passphrase, prompt, self.key_id))
        if not self.key_id:
            raise usage("HTTP Signature auth needs --key FILE or --key-id FINGERPRINT (ssh-agent)")
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


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    if not isinstance(obj, Globals):
        obj = Globals()
        ctx.find_root().obj = obj
    return obj


@contextmanager
def handled(ctx: typer.Context) -> Iterator[Globals]:
    """Run a command body: IMGAPI errors are printed (code + message) and exit non-zero."""
    g = globals_of(ctx)
    try:
        yield g
    except TransferInterrupted as e:
        output.print_error(e, g.json)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt as e:
        if not getattr(e, "reported", False):  # a transfer already said "interrupted; rerun..."
            output.note("interrupted")
        raise typer.Exit(EXIT_CTRL_C) from None
    except CliError as e:
        output.print_error(e, g.json)
        raise typer.Exit(EXIT_USAGE if e.code == "Usage" else EXIT_ERROR) from None
    except OSError as e:
        output.print_error(CliError("LocalError", str(e)), g.json)
        raise typer.Exit(EXIT_ERROR) from None


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``k=v`` sets the string v; ``k:=json`` sets a JSON value (``public:=true``, ``tags:={"a":1}``)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise usage(f"--set expects KEY=VALUE or KEY:=JSON, got {item!r}")
        if key.endswith(":"):
            key = key[:-1]
            try:
                out[key] = json.loads(value)
            except ValueError as e:
                raise usage(f"--set {key}:= needs a JSON value: {e}") from None
        else:
            out[key] = value
    return out


UuidArg = Annotated[str, typer.Argument(help="Image UUID, NAME@VERSION or NAME.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", "-j", help="JSON output.")]
RateOpt = Annotated[str | None, typer.Option(help="Bandwidth limit in bytes/s (500K, 2M...).")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]
