"""Profiles: named sets of connection settings in ``~/.config/imgapi/config.toml``.

.. code-block:: toml

    profile = "east"                 # used when neither --profile nor IMGAPI_PROFILE names one

    [profiles.east]
    url = "https://imgapi.east.example.com"
    user = "admin"                   # HTTP Signature keyId
    key_id = "SHA256:3Yk..."         # a key in ssh-agent, or the fingerprint --key must have
    key = "~/.ssh/id_ed25519"        # optional: sign with this file instead of the agent
    account = "930896af-bf8c-48d4-885c-6573a94b1853"
    channel = "release"

The file is ``$IMGAPI_CONFIG`` if set, else ``$XDG_CONFIG_HOME/imgapi/config.toml`` (default
``~/.config/imgapi/config.toml``). A command-line option or its ``IMGAPI_*`` variable wins over the
profile, which wins over the built-in defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from imgapi_cli.client import CliError

KEYS = frozenset({"url", "user", "key", "key_id", "account", "channel", "timeout"})


def config_path() -> Path:
    explicit = os.environ.get("IMGAPI_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "imgapi" / "config.toml"


def load_profile(name: str | None) -> dict[str, str]:
    """The settings of profile ``name`` (or of the file's default profile); {} without any."""
    path = config_path()
    if not path.exists():
        if name:
            raise CliError("Usage", f"profile {name!r} asked for, but there is no {path}")
        return {}
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CliError("Usage", f"{path}: {e}") from None
    profiles = config.get("profiles", {})
    if not isinstance(profiles, dict):
        raise CliError("Usage", f"{path}: [profiles.NAME] tables expected")
    name = name or config.get("profile")
    if not name:
        return {}
    profile = profiles.get(name)
    if not isinstance(profile, dict):
        known = ", ".join(sorted(profiles)) or "none"
        raise CliError("Usage", f"{path}: no profile {name!r} (profiles: {known})")
    unknown = sorted(set(profile) - KEYS)
    if unknown:
        raise CliError(
            "Usage",
            f"{path}: profile {name!r}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})",
        )
    return {k: str(v) for k, v in profile.items()}
