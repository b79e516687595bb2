"""tests/gateway/transcripts.md (IMGAPI's documented exchanges), replayed transcript by transcript against the real stack.

Values the server chooses (the new image uuid, ``published_at``, ETags derived from them, the pid)
are learnt from the responses and substituted in the expected texts; everything else (status, the
exact 2-space JSON text, Content-Length, Allow, Content-MD5) must match the transcript.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from email.utils import formatdate
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.components import FIXTURES, SHAPES, Shape
from tests.fixture_files import XDC_MD5, XDC_SHA1
from tests.gateway.conftest import LUKE, PUBLIC_CHANNELS, Stack, load_fixture, start_stack
from tests.gateway.test_import import FakeImgapi
from tests.gateway.transcripts import Exchange, Substitutions, parse_examples, replay

EXCHANGES = parse_examples()
EXAMPLE_UUID = "5ce1b1a0-4d7a-4d3e-9c5f-3b2a1f0e9d8c"
EXAMPLE_PUBLISHED = "2024-05-01T10:00:03.123Z"


def _incremental_record() -> dict[str, object]:
    """``900cffef`` (origin c58161c0) of transcript 3.11 (transcripts.md), in stored form."""
    rec: dict[str, object] = json.loads(
        (FIXTURES / "xdc/900cffef-55e3-4e7d-b7ec-ccf439a159e3.manifest").read_text()
    )
    rec["owner"] = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
    rec["origin"] = "c58161c0-2547-11e2-a75e-9fdca1940570"
    rec["activated"] = True
    rec["state"] = "active"
    rec.pop("channels", None)
    files = rec.get("files")
    assert isinstance(files, list)
    for f in files:
        f.update({"contentMD5": XDC_MD5, "mtime": "2024-05-01T10:00:00.000Z", "stor": "local"})
    return rec


@pytest.fixture(scope="module", params=SHAPES)
def examples_dc(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    shape = Shape.of(request, request.param)
    stack = start_stack(tmp_path_factory.mktemp("examples-dc"), mode="dc", shape=shape)
    stack.seed(load_fixture("dc-test-images.json"))
    stack.seed([_incremental_record()])
    yield stack
    stack.stop()


def _learn(ex: Exchange, r: httpx.Response, subs: Substitutions) -> None:
    if r.headers.get("content-type") != "application/json" or not r.content:
        return
    body = r.json()
    if ex.section.startswith("2.1") and isinstance(body, dict):
        subs.values[EXAMPLE_UUID] = body["uuid"]
    if (
        isinstance(body, dict)
        and "published_at" in body
        and EXAMPLE_PUBLISHED not in subs.values
        and body.get("uuid") == subs.values.get(EXAMPLE_UUID)
    ):
        subs.values[EXAMPLE_PUBLISHED] = body["published_at"]
    if isinstance(body, dict) and "pid" in body:
        subs.values['"pid": 4242'] = f'"pid": {body["pid"]}'
    etag = ex.response_headers.get("Etag")
    if etag and "etag" in r.headers and etag not in subs.values:
        subs.values[etag] = r.headers["etag"]


def _needs_files(ex: Exchange) -> bool:
    return "/file" in ex.target or "/icon" in ex.target


def test_examples_dc_sections_1_to_3(examples_dc: Stack) -> None:
    subs = Substitutions()
    failures: list[str] = []
    with examples_dc.client() as c:
        for ex in EXCHANGES:
            if ex.section[:1] not in ("1", "2", "3") and not ex.section.startswith("Ping"):
                continue
            if ex.section.startswith("3.12"):
                # The transcript reuses the image deleted in transcript 2.10: give it a live one.
                r = c.post(
                    f"/images?account={LUKE}",
                    json={"name": "i", "version": "1", "type": "zone-dataset", "os": "smartos"},
                )
                subs.values[EXAMPLE_UUID] = r.json()["uuid"]
            try:
                replay(c, ex, subs, learn=_learn)
            except AssertionError as e:
                if _needs_files(ex):  # files engineer's routes: reported together at the end
                    failures.append(f"(file route) {e}")
                    if ex.method == "PUT" and ex.section.startswith("2."):
                        break  # the lifecycle cannot go on without its file
                    continue
                raise
    assert not failures, failures


# --- transcripts 4.x: public mode, signature auth, channels ----------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module", params=SHAPES)
def examples_public(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, rsa_key: rsa.RSAPrivateKey
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("examples-public")
    keys = Path(tmp) / "keys"
    keys.mkdir()
    pub = rsa_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    (keys / "trentm.keys").write_text("# trentm\n\n" + pub.decode() + " trentm@example\n")
    stack = start_stack(
        tmp,
        mode="public",
        channels=PUBLIC_CHANNELS,
        admin_uuid=None,
        auth_type="signature",
        auth_keys_dir=str(keys),
        shape=Shape.of(request, request.param),
    )
    stack.seed(load_fixture("public-test-images.json"))
    yield stack
    stack.stop()


def sign_headers(
    key: rsa.RSAPrivateKey, user: str, headers: dict[str, str], algorithm: str = "rsa-sha256"
) -> None:
    date = formatdate(usegmt=True)
    headers["Date"] = date
    h = hashes.SHA256() if algorithm.endswith("sha256") else hashes.SHA1()
    sig = key.sign(f"date: {date}".encode(), padding.PKCS1v15(), h)
    headers["Authorization"] = (
        f'Signature keyId="{user}",algorithm="{algorithm}",signature="{base64.b64encode(sig).decode()}"'
    )


def test_examples_public_section_4(examples_public: Stack, rsa_key: rsa.RSAPrivateKey) -> None:
    subs = Substitutions()
    with examples_public.client() as c:
        for ex in EXCHANGES:
            if not ex.section.startswith("4"):
                continue
            replay(c, ex, subs, sign=lambda h: sign_headers(rsa_key, "trentm", h), learn=_learn)


# --- transcripts 5.x: AdminImportRemoteImage and the job resource ----------------------------------

EXAMPLE_SOURCE = "https://images.example.org"
EXAMPLE_JOB = "0b3a3a62-5d2e-4a5f-8e7f-7a4a1c9d2e11"
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _with_observed_timestamps(expected: Any, got: Any) -> Any:
    """``expected`` with each timestamp replaced by the one at the same place in ``got``."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return {k: _with_observed_timestamps(v, got.get(k)) for k, v in expected.items()}
    if isinstance(expected, list) and isinstance(got, list) and len(got) == len(expected):
        return [_with_observed_timestamps(e, g) for e, g in zip(expected, got, strict=True)]
    if isinstance(expected, str) and _TIMESTAMP.match(expected) and isinstance(got, str):
        assert _TIMESTAMP.match(got), got
        return got
    return expected


def test_examples_section_5_import_remote_and_job(tmp_path: Path) -> None:
    remote = FakeImgapi()
    stack = start_stack(tmp_path, mode="dc", remote_allowlist=["127.0.0.0/8"], allow_insecure=True)
    subs = Substitutions(
        {
            quote(EXAMPLE_SOURCE, safe=""): quote(remote.url, safe=""),
            # The job object carries the origins it imports (the ImportRemoteImage job description
            # lists `origins`; the transcript of an image without origins leaves the empty list out).
            f'"source": "{EXAMPLE_SOURCE}",\n': f'"source": "{remote.url}",\n    "origins": [],\n',
            EXAMPLE_SOURCE: remote.url,
        }
    )

    def learn(ex: Exchange, r: httpx.Response, s: Substitutions) -> None:
        s.values[EXAMPLE_JOB] = r.json()["job_uuid"]

    try:
        with stack.client() as c:
            section = [ex for ex in EXCHANGES if ex.section.startswith("5")]
            assert [ex.method for ex in section] == ["POST", "GET"]
            replay(c, section[0], subs, learn=learn)
            job_url = "/jobs/" + subs.values[EXAMPLE_JOB]
            deadline = time.monotonic() + 60
            while c.get(job_url).json()["execution"] not in ("succeeded", "failed"):
                assert time.monotonic() < deadline, "the import job did not finish"
                time.sleep(0.05)
            # The job: the transcript's text with the instants this run observed.
            get = section[1]
            r = c.request(get.method, subs.apply(get.target), headers=get.headers)
            assert r.status_code == get.status and r.headers["content-type"] == "application/json"
            job = r.json()
            expected = _with_observed_timestamps(json.loads(subs.apply(get.response_body)), job)
            assert job == expected
            assert r.text == json.dumps(expected, indent=2, ensure_ascii=False)
            steps = [(st["started_at"], st["finished_at"]) for st in job["chain_results"]]
            assert job["created_at"] <= steps[0][0]
            assert all(a <= b for a, b in steps) and all(b <= c for (_, b), (c, _) in pairwise(steps))
            image = c.get("/images/f3078f0c-a53b-4140-b7af-fbb6308a8e35").json()
            assert image["state"] == "active" and image["files"][0]["sha1"] == XDC_SHA1
    finally:
        stack.stop()
        remote.close()
