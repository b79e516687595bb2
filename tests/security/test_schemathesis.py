"""schemathesis against the embedded stack: no 5xx, every 4xx an IMGAPI JSON error.

The schema is the one the gateway serves (``GET /openapi.json``); schemathesis generates requests
from it, both schema-conforming and not (negative mode), a bounded number per operation.
"""

from __future__ import annotations

import base64
import os
import uuid as uuid_mod
from collections.abc import Callable, Generator, Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from imgapi.v1 import catalog_pb2
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.openapi.document import openapi_path
from gateway.routes.table import ROUTES
from gateway.settings import GatewaySettings
from tests.gateway.conftest import PUBLIC_CHANNELS, Stack, start_stack
from tests.gateway.test_auth import openssh, signed

#: Examples per operation and configuration (IMGAPI_FUZZ_EXAMPLES=500 for a longer run on demand).
MAX_EXAMPLES = int(os.environ.get("IMGAPI_FUZZ_EXAMPLES", "20"))

# tus PATCH bodies are raw bytes, like application/octet-stream.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

ALICE = rsa.generate_private_key(public_exponent=65537, key_size=2048)

#: The server shapes: dc mode (CloneImage), public mode with channels (ListChannels, channel-add).
CONFIGS: dict[str, dict[str, Any]] = {
    "dc": {"mode": "dc"},
    "public": {"mode": "public", "channels": PUBLIC_CHANNELS, "admin_uuid": None},
    # HTTP Signature on: schemathesis sends made-up Authorization headers (no key verifies them).
    "signature": {"mode": "dc", "auth_type": "signature", "auth_keys": {"alice": [openssh(ALICE)]}},
}


class Signed(httpx.Auth):
    """Signs each request as alice (set-up calls on the signature stack)."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(signed(ALICE, "alice"))
        yield request


def _operations(name: str) -> list[tuple[str, str, str]]:
    cfg = CONFIGS[name]
    config = catalog_pb2.ServerConfig(
        mode=cfg["mode"], channels=[catalog_pb2.Channel(name=c["name"]) for c in cfg.get("channels", [])]
    )
    return [
        (name, method, openapi_path(r.pattern))
        for r in ROUTES
        if r.when is None or r.when(config, GatewaySettings())
        for method in r.ops
    ]


OPERATIONS = [op for name in CONFIGS for op in _operations(name)]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Stack]]:
    started: dict[str, Stack] = {}
    try:
        for name, cfg in CONFIGS.items():
            started[name] = start_stack(tmp_path_factory.mktemp(f"schemathesis-{name}"), **cfg)
        yield started
    finally:
        for stack in started.values():
            stack.stop()


@pytest.fixture(scope="module")
def api_schemas(stacks: dict[str, Stack]) -> dict[str, Any]:
    out = {}
    for name, stack in stacks.items():
        doc = httpx.get(f"{stack.base_url}/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(doc)
        schema.config.update(base_url=stack.base_url)
        out[name] = schema
    return out


#: 5xx answers the contract requires, by IMGAPI code: when each is the right answer.
DESIGNED_5XX: dict[str, Callable[[Any], bool]] = {
    # CreateImageFromVm, Docker/LXD import and push are not available in this deployment.
    "NotAvailable": lambda case: (
        (case.path, case.method) in (("/images", "POST"), ("/images/{uuid}/push", "POST"))
    ),
    # ExportImage needs Manta storage, which this deployment never has.
    "StorageUnsupported": lambda case: _query(case, "action") == "export",
    # Fetching from another IMGAPI fails (no network, or refused by the SSRF guard).
    "RemoteSourceError": lambda case: (
        _query(case, "source") is not None
        or _query(case, "action") in ("import-remote", "import-from-datacenter")
    ),
}


def _query(case: Any, name: str) -> Any:
    return (case.query or {}).get(name)


def problem(case: Any, response: Any) -> str | None:
    """Why this answer breaks the rules (None if it does not)."""
    status = response.status_code
    if status < 400:
        return None
    ctype = response.headers.get("content-type", [""])[0]
    if not ctype.startswith("application/json"):
        return f"{status} with Content-Type {ctype!r}: {response.content[:200]!r}"
    if case.method == "HEAD":
        return None  # a HEAD answer has no body; the headers are those of the JSON error
    try:
        body = response.json()
    except ValueError:
        return f"{status} with a body that is not JSON: {response.content[:200]!r}"
    if not (
        isinstance(body, dict) and isinstance(body.get("code"), str) and isinstance(body.get("message"), str)
    ):
        return f"{status} with a body that is not an IMGAPI error: {body!r}"
    if status >= 500:
        if case.path == "/ping" and _query(case, "error") is not None:
            return None  # the error simulator answers the sample error asked for
        designed = DESIGNED_5XX.get(body["code"])
        if designed is None or not designed(case):
            return f"{status} {body}"
    return None


OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
ICON = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def make_images(stack: Stack) -> list[str]:
    """Fresh images for one operation's run (earlier runs may delete theirs): one unactivated
    without file, one active with a file and an icon, one active private shared through its ACL
    (not on a public server)."""
    out = []
    kinds = (
        ((False, True), (True, True))
        if stack.mode == "public"
        else ((False, True), (True, True), (True, False))
    )
    auth = Signed() if stack.settings.auth_type == "signature" else None
    with httpx.Client(base_url=stack.base_url, headers={"Accept-Version": "*"}, auth=auth, timeout=30) as c:
        for i, (activate, public) in enumerate(kinds):
            body = {"name": f"fuzz-{i}", "version": "1.0", "type": "zone-dataset", "os": "smartos"}
            r = c.post("/images", params={"account": OWNER}, json={**body, "public": public})
            assert r.status_code == 200, r.text
            uuid = r.json()["uuid"]
            out.append(uuid)
            if not activate:
                continue
            r = c.put(f"/images/{uuid}/file", params={"compression": "none"}, content=b"x" * 1000)
            assert r.status_code == 200, r.text
            r = c.put(f"/images/{uuid}/icon", headers={"Content-Type": "image/png"}, content=ICON)
            assert r.status_code == 200, r.text
            if not public:
                r = c.post(f"/images/{uuid}/acl", json=[str(uuid_mod.uuid4())])
                assert r.status_code == 200, r.text
            r = c.post(f"/images/{uuid}", params={"action": "activate"})
            assert r.status_code == 200, r.text
    return out


def with_known_uuids(
    case: Any, known: str | None, auth: dict[str, str] | None, twice: tuple[str, str, str] | None
) -> Any:
    """When drawn: aim the ``uuid`` path parameter at an existing image, replace the Authorization
    header, and send a query parameter twice (``name=&name=v``, ``name=v&name=w``) or empty."""
    if known is not None and case.path_parameters and "uuid" in case.path_parameters:
        case.path_parameters["uuid"] = known
    if auth is not None:
        case.headers = {**(case.headers or {}), **auth}
    if twice is not None:
        how, name, other = twice
        query = dict(case.query or {})
        value = query.get(name, other)
        value = value if isinstance(value, str) else other
        query[name] = {"empty": "", "first-empty": ["", value], "repeated": [value, other]}[how]
        case.query = query
    return case


_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24)


@st.composite
def signature_headers(draw: st.DrawFn) -> dict[str, str]:
    """HTTP Signature headers: alice's valid one (to reach what lies behind authentication), or
    well-formed ones with wrong parts, or near-misses of the syntax."""
    if draw(st.booleans()):
        return signed(ALICE, "alice")
    key = draw(st.sampled_from(["alice", "bob", ""]) | _ASCII)
    alg = draw(st.sampled_from(["rsa-sha256", "RSA-SHA1", "dsa-sha1", "hmac-sha256", "ed25519"]) | _ASCII)
    heads = draw(st.sampled_from([None, "date", "request-line", "x-date host", ""]) | _ASCII)
    sig = draw(st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()) | _ASCII)
    parts = [f'keyId="{key}"', f'algorithm="{alg}"', f'signature="{sig}"']
    if heads is not None:
        parts.insert(2, f'headers="{heads}"')
    value = draw(st.sampled_from(["Signature ", "signature ", "Basic ", ""])) + ",".join(
        draw(st.permutations(parts))
    )
    out = {"Authorization": value}
    date = draw(st.sampled_from(["", "now", "Thu, 01 Jan 1970 00:00:00 GMT"]) | _ASCII).strip()
    if date:
        out["Date"] = formatdate(usegmt=True) if date == "now" else date
    return out


DOCUMENT_CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def check(case: Any) -> None:
    response = case.call(timeout=30)
    why = problem(case, response)
    assert why is None, f"{case.as_curl_command()}\n  -> {why}"
    # The document is honest: statuses, content types and bodies are the ones it declares.
    case.validate_response(response, checks=DOCUMENT_CHECKS)


@pytest.mark.parametrize(("config", "method", "path"), OPERATIONS, ids=[" ".join(op) for op in OPERATIONS])
def test_no_5xx_and_json_errors(
    stacks: dict[str, Stack], api_schemas: dict[str, Any], config: str, method: str, path: str
) -> None:
    op = api_schemas[config][path][method]
    images = make_images(stacks[config])
    cases = st.one_of(
        op.as_strategy(generation_mode=GenerationMode.POSITIVE),
        op.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    auths = st.none() | signature_headers() if config == "signature" else st.none()
    names = [p["name"] for p in op.definition.raw.get("parameters", []) if p.get("in") == "query"]
    twice = st.none() | st.tuples(
        st.sampled_from(["empty", "first-empty", "repeated"]),
        st.sampled_from([*names, "account"]),
        st.sampled_from([OWNER, "*", "true"]) | _ASCII,
    )
    strategy = st.builds(with_known_uuids, cases, st.sampled_from([None, *images]), auths, twice)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        check(case)

    run()
