"""schemathesis against the embedded stack: no 5xx, every 4xx an IMGAPI JSON error.

The schema is the one the gateway serves (``GET /openapi.json``); schemathesis generates requests
from it, both schema-conforming and not (negative mode), a bounded number per operation.
"""

from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from imgapi.v1 import catalog_pb2
from schemathesis import GenerationMode

from gateway.openapi import openapi_path
from gateway.routes import ROUTES
from gateway.settings import GatewaySettings
from tests.gateway.conftest import Stack, start_stack

MAX_EXAMPLES = 50

# tus PATCH bodies are raw bytes, like application/octet-stream.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

_DC = catalog_pb2.ServerConfig(mode="dc")
OPERATIONS = [
    (method, openapi_path(r.pattern))
    for r in ROUTES
    if r.when is None or r.when(_DC, GatewaySettings())
    for method in r.ops
]


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("schemathesis"), mode="dc")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_stack: Stack) -> Any:
    doc = httpx.get(f"{fuzz_stack.base_url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=fuzz_stack.base_url)
    return schema


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


def make_images(base_url: str) -> list[str]:
    """Fresh images for one operation's run (earlier runs may delete theirs): one unactivated
    without file, one active with a file and an icon, one active private shared through its ACL."""
    out = []
    with httpx.Client(base_url=base_url, headers={"Accept-Version": "*"}, timeout=30) as c:
        for i, (activate, public) in enumerate(((False, True), (True, True), (True, False))):
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


def with_known_uuids(case: Any, known: str | None) -> Any:
    """Aim the ``uuid`` path parameter at an existing image, when drawn."""
    if known is not None and case.path_parameters and "uuid" in case.path_parameters:
        case.path_parameters["uuid"] = known
    return case


def check(case: Any) -> None:
    response = case.call(timeout=30)
    why = problem(case, response)
    assert why is None, f"{case.as_curl_command()}\n  -> {why}"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_5xx_and_json_errors(fuzz_stack: Stack, api_schema: Any, method: str, path: str) -> None:
    op = api_schema[path][method]
    images = make_images(fuzz_stack.base_url)
    cases = st.one_of(
        op.as_strategy(generation_mode=GenerationMode.POSITIVE),
        op.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    strategy = st.builds(with_known_uuids, cases, st.sampled_from([None, *images]))

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
