"""Registry authentication through REST: token auth (RT, with the test's token server) and htpasswd
Basic auth (RB), credentials from ``X-Registry-Auth`` / ``X-Registry-Config``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.docker.oci import Image, Layout, Step, skopeo_push
from tests.docker.registry import RegistryServer, start_htpasswd_registry, start_registry
from tests.docker.test_import import IMPORT, lines
from tests.docker.token_server import SERVICE, TokenServer, start_token_server

USER, PASSWORD = "alice", "s3cret"


def one_layer(text: str) -> Image:
    return Image([Step(f"/bin/sh -c #(nop) ADD file:{text} in / ", {f"{text}.txt": text.encode()})])


@dataclass
class Registries:
    rt: RegistryServer
    tokens: TokenServer
    rb: RegistryServer


@pytest.fixture(scope="module")
def regs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    tmp: Path = tmp_path_factory.mktemp("auth-registries")
    tokens = start_token_server(tmp / "tokens", USER, PASSWORD)
    rt = rb = None
    try:
        rt = start_registry(tmp / "rt", tokens.registry_auth_yaml())
        rb = start_htpasswd_registry(tmp / "rb", USER, PASSWORD)
        layout = Layout(tmp / "oci" / "images")
        for ref in ("pub", "priv", "priv2", "priv3", "priv4", "basic"):
            layout.tag(ref, layout.image(one_layer(ref)))
        creds = f"{USER}:{PASSWORD}"
        skopeo_push(layout.root, "pub", f"{rt.host}/pub/base:v1", creds=creds)
        for ref in ("priv", "priv2", "priv3", "priv4"):
            skopeo_push(layout.root, ref, f"{rt.host}/priv/{ref}:v1", creds=creds)
        skopeo_push(layout.root, "basic", f"{rb.host}/test/basic:v1", creds=creds)
        yield Registries(rt, tokens, rb)
    finally:
        for r in (rt, rb):
            if r is not None:
                r.stop()
        tokens.stop()


def auth_header(obj: object, urlsafe: bool = False) -> str:
    raw = json.dumps(obj).encode()
    return (base64.urlsafe_b64encode(raw).rstrip(b"=") if urlsafe else base64.b64encode(raw)).decode()


def last(c: httpx.Client, query: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    msgs = lines(c.post(IMPORT + query, headers=headers or {}))
    return msgs[-1]


def succeeded(msg: dict[str, object]) -> bool:
    payload = msg.get("payload")
    return isinstance(payload, dict) and str(payload.get("status", "")).startswith("Status: ")


def test_token_anonymous_pull_on_public_namespace(c: httpx.Client, regs: Registries) -> None:
    regs.tokens.requests.clear()
    msg = last(c, f"&repo={regs.rt.host}/pub/base&tag=v1")
    assert succeeded(msg), msg
    query, auth = regs.tokens.requests[0]
    assert query == [("service", SERVICE), ("scope", "repository:pub/base:pull")]
    assert auth is None


def test_token_private_repository(c: httpx.Client, regs: Registries) -> None:
    h = regs.rt.host
    not_found = {"code": "ResourceNotFound", "message": "UnauthorizedError"}
    assert last(c, f"&repo={h}/priv/priv&tag=v1")["error"] == not_found
    wrong = {"x-registry-auth": auth_header({"username": USER, "password": "nope"})}
    assert last(c, f"&repo={h}/priv/priv&tag=v1", wrong)["error"] == {
        "code": "UnauthorizedError",
        "message": "incorrect username or password",
    }
    assert last(c, f"&repo={h}/priv/priv&tag=v1", {"x-registry-auth": "%%% not base64"})["error"] == not_found

    regs.tokens.requests.clear()
    right = {"x-registry-auth": auth_header({"username": USER, "password": PASSWORD, "serveraddress": h})}
    assert succeeded(last(c, f"&repo={h}/priv/priv&tag=v1", right))
    query, auth = regs.tokens.requests[0]
    assert query == [("service", SERVICE), ("scope", "repository:priv/priv:pull"), ("account", USER)]
    assert auth == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    urlsafe = {"x-registry-auth": auth_header({"username": USER, "password": PASSWORD}, urlsafe=True)}
    assert succeeded(last(c, f"&repo={h}/priv/priv2&tag=v1", urlsafe))
    config = {"x-registry-config": auth_header({h: {"username": USER, "password": PASSWORD}})}
    assert succeeded(last(c, f"&repo={h}/priv/priv3&tag=v1", config))
    # X-Registry-Auth replaces what X-Registry-Config selected
    both = {**config, "x-registry-auth": auth_header({"username": USER, "password": "nope"})}
    assert last(c, f"&repo={h}/priv/priv4&tag=v1", both)["error"]["code"] == "UnauthorizedError"  # type: ignore[index]


def test_basic_auth(c: httpx.Client, regs: Registries) -> None:
    h = regs.rb.host
    not_found = {"code": "ResourceNotFound", "message": "UnauthorizedError"}
    assert last(c, f"&repo={h}/test/basic&tag=v1")["error"] == not_found
    wrong = {"x-registry-auth": auth_header({"username": USER, "password": "nope"})}
    assert last(c, f"&repo={h}/test/basic&tag=v1", wrong)["error"] == not_found
    right = {"x-registry-auth": auth_header({"username": USER, "password": PASSWORD})}
    assert succeeded(last(c, f"&repo={h}/test/basic&tag=v1", right))


def test_push_with_token_auth(c: httpx.Client, regs: Registries) -> None:
    h = regs.rt.host
    right = {"x-registry-auth": auth_header({"username": USER, "password": PASSWORD})}
    msgs = lines(c.post(f"{IMPORT}&repo={h}/priv/priv&tag=v1", headers=right))
    created = msgs[-3]
    body = {k: created[k] for k in ("manifest_str", "image", "config_digest")}
    regs.tokens.requests.clear()
    r = c.post(
        f"/images/{created['image_uuid']}/push?repoAndTag={h}/priv/pushed:v2", json=body, headers=right
    )
    assert r.status_code == 200
    last_line = json.loads(r.text.split("\r\n")[-2])
    assert last_line["payload"]["aux"]["Digest"] == created["manifest_digest"]
    scopes = [dict(q).get("scope") for q, _ in regs.tokens.requests]
    assert scopes == ["repository:priv/pushed:pull", "repository:priv/pushed:pull,push"]
    anonymous = c.post(f"/images/{created['image_uuid']}/push?repoAndTag={h}/priv/pushed:v3", json=body)
    assert json.loads(anonymous.text.split("\r\n")[-2])["type"] == "error"
