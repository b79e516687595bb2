"""Keys and profiles through the real ``imgapi`` command against an ``authType: signature`` stack:
passphrase-protected OpenSSH keys (bcrypt), ``--key-id`` as a fingerprint (of ``--key`` or of a key
held by a real ``ssh-agent``), and profiles from the config file (``IMGAPI_PROFILE``)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.cli.conftest import Cli
from tests.cli.test_auth import KEYS, PrivateKey, public_line, sig_stack  # noqa: F401 (fixture)
from tests.cli.test_terminal import IMGAPI, Terminal
from tests.gateway.conftest import Stack


def sha256_fp(key: PrivateKey) -> str:
    blob = base64.b64decode(public_line(key).split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def md5_fp(key: PrivateKey) -> str:
    blob = base64.b64decode(public_line(key).split()[1])
    return ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())


def openssh_file(tmp_path: Path, user: str, passphrase: bytes | None = None) -> Path:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    data = KEYS[user].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, enc)
    path = tmp_path / f"{user}-{'enc' if passphrase else 'plain'}"
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@pytest.fixture()
def sig_cli(sig_stack: Stack, tmp_path: Path) -> Cli:  # noqa: F811
    return Cli(sig_stack, tmp_path / "cache")


def test_passphrase_protected_openssh_key(sig_cli: Cli, tmp_path: Path) -> None:
    key = openssh_file(tmp_path, "alice", b"open sesame")
    base = ("--user", "alice", "--key", str(key), "list")
    r = sig_cli(*base, code=1)  # not a terminal, no IMGAPI_KEY_PASSPHRASE: says how to give one
    assert "IMGAPI_KEY_PASSPHRASE" in r.stderr and "Traceback" not in r.stderr
    r = sig_cli(*base, env={"IMGAPI_KEY_PASSPHRASE": "wrong"}, code=1)
    assert "wrong passphrase" in r.stderr
    assert sig_cli(*base, "-j", env={"IMGAPI_KEY_PASSPHRASE": "open sesame"}).stdout.startswith("[")


def test_key_id_must_match_the_key_file(sig_cli: Cli, tmp_path: Path) -> None:
    key = openssh_file(tmp_path, "carol")
    for fp in (sha256_fp(KEYS["carol"]), md5_fp(KEYS["carol"])):
        sig_cli("--user", "carol", "--key", str(key), "--key-id", fp, "list")
    r = sig_cli("--user", "carol", "--key", str(key), "--key-id", sha256_fp(KEYS["alice"]), "list", code=1)
    assert "is not the key" in r.stderr


@pytest.fixture()
def agent(tmp_path: Path) -> Iterator[str]:
    """A real ssh-agent holding alice (RSA), bob (ECDSA) and carol (Ed25519)."""
    sock = str(tmp_path / "agent.sock")
    out = subprocess.run(["ssh-agent", "-s", "-a", sock], capture_output=True, text=True, check=True).stdout
    pid = int(re.search(r"SSH_AGENT_PID=(\d+)", out).group(1))  # type: ignore[union-attr]
    try:
        for user in KEYS:
            path = openssh_file(tmp_path, user)
            subprocess.run(
                ["ssh-add", "-q", str(path)], env={**os.environ, "SSH_AUTH_SOCK": sock}, check=True
            )
        yield sock
    finally:
        os.kill(pid, signal.SIGTERM)


def test_ssh_agent_signs_for_the_key_id(sig_cli: Cli, agent: str) -> None:
    env = {"SSH_AUTH_SOCK": agent}
    for user, key in KEYS.items():
        listed = sig_cli.json("--user", user, "--key-id", sha256_fp(key), "list", "-j", env=env)
        assert isinstance(listed, list), user
    # MD5 notation too (what Triton shows as a keyId)
    sig_cli("--user", "alice", "--key-id", md5_fp(KEYS["alice"]), "list", env=env)
    # A key the agent does not hold; a key that is not the user's.
    r = sig_cli("--user", "alice", "--key-id", "SHA256:" + "A" * 43, "list", env=env, code=1)
    assert "ssh-agent holds no key" in r.stderr and sha256_fp(KEYS["bob"]) in r.stderr
    r = sig_cli("--user", "alice", "--key-id", sha256_fp(KEYS["bob"]), "list", env=env, code=1)
    assert "UnauthorizedError (HTTP 401)" in r.stderr


def test_profiles(sig_cli: Cli, tmp_path: Path) -> None:
    key = openssh_file(tmp_path, "bob")
    config = tmp_path / "config.toml"
    config.write_text(
        'profile = "home"\n\n'
        f'[profiles.home]\nurl = "{sig_cli.stack.base_url}"\nuser = "bob"\nkey = "{key}"\n\n'
        '[profiles.broken]\nurl = "http://127.0.0.1:9"\nuser = "bob"\n'
        f'key = "{key}"\n\n[profiles.typo]\nurll = "x"\n'
    )
    env = {"IMGAPI_CONFIG": str(config), "IMGAPI_URL": ""}
    assert isinstance(sig_cli.json("list", "-j", env=env), list)  # the default profile
    assert isinstance(sig_cli.json("list", "-j", env={**env, "IMGAPI_PROFILE": "home"}), list)
    r = sig_cli("list", env={**env, "IMGAPI_PROFILE": "broken"}, code=1)
    assert "ConnectionError" in r.stderr and "127.0.0.1:9" in r.stderr
    # a command-line option wins over the profile
    sig_cli("--profile", "broken", "--url", sig_cli.stack.base_url, "list", env=env)
    r = sig_cli("--profile", "nope", "list", env=env, code=2)
    assert "no profile 'nope'" in r.stderr and "home" in r.stderr
    r = sig_cli("--profile", "typo", "list", env=env, code=2)
    assert "unknown keys urll" in r.stderr


def test_passphrase_asked_on_a_terminal(sig_cli: Cli, tmp_path: Path) -> None:
    key = openssh_file(tmp_path, "carol", b"tty secret")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")},
        "IMGAPI_URL": sig_cli.stack.base_url,
        "IMGAPI_CACHE_DIR": str(sig_cli.cache),
    }
    term = Terminal([IMGAPI, "--user", "carol", "--key", str(key), "list", "-j"], env)
    term.read_until(f"Passphrase for {key}: ")
    os.write(term.fd, b"tty secret\n")
    assert term.wait() == 0, term.screen
    assert "tty secret" not in term.screen  # not echoed
