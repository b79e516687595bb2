"""Imports from another IMGAPI and from URLs and the emulated
WFAPI jobs, against a tiny fake remote IMGAPI serving the ``xdc/`` fixtures
(tests/fixture_files.py) on loopback (reachable through the ``remote_allowlist`` setting) and an HTTPS file server."""

from __future__ import annotations

import copy
import datetime
import hashlib
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.components import FIXTURES
from tests.fixture_files import XDC_SHA1
from tests.gateway.conftest import SDC, VADER, Stack, start_stack
from tests.gateway.test_files import JUNK, JUNK_SHA1, error, new_image

XDC = FIXTURES / "xdc"
LUKE = "91ba0e64-2547-11e2-a972-df579e5fddb3"

BASE = "c58161c0-2547-11e2-a75e-9fdca1940570"  # inc-level-1 (operator, public)
LEVEL2 = "900cffef-55e3-4e7d-b7ec-ccf439a159e3"
LEVEL3 = "15963d90-61d7-4664-87a6-f56b16492d5a"
LEVEL4 = "649d6948-4f1d-11e8-8249-1b9928638559"
PUBLIC_OP = "7a1b1967-6ecf-1e4c-8f09-f49094cc36ad"
FATHER = "9f819499-8298-9842-8cc5-1c2838196ab4"  # vader, private
VADER_PRIVATE = "f3078f0c-a53b-4140-b7af-fbb6308a8e35"

# Synthetic remote images for error paths.
INACTIVE = "11111111-1111-4111-8111-111111111111"
CHILD_OF_INACTIVE = "22222222-2222-4222-8222-222222222222"
BAD_FILE = "33333333-3333-4333-8333-333333333333"
DC_BASE = "44444444-4444-4444-8444-444444444444"  # operator-owned, never imported locally
DC_CHILD = "55555555-5555-4555-8555-555555555555"  # vader's, origin DC_BASE
VADER_UNACTIVATED = "66666666-6666-4666-8666-666666666666"


class QuietServer(ThreadingHTTPServer):
    """A test server that does not print tracebacks when a client hangs up early."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class FakeImgapi:
    """``GET /images/:uuid[?account=]`` and ``GET /images/:uuid/file`` over the xdc fixtures."""

    def __init__(self) -> None:
        self.manifests: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        for p in XDC.glob("*.manifest"):
            m = json.loads(p.read_text())
            self.manifests[m["uuid"]] = m
            self.files[m["uuid"]] = (XDC / f"{m['uuid']}.file0").read_bytes()
        tmpl = self.manifests[VADER_PRIVATE]
        self._add(INACTIVE, tmpl, state="unactivated", owner=SDC)
        self._add(CHILD_OF_INACTIVE, tmpl, origin=INACTIVE, owner=SDC)
        self._add(BAD_FILE, tmpl, owner=SDC, bad_sha1=True)
        self._add(DC_BASE, tmpl, owner=SDC, public=True)
        self._add(DC_CHILD, tmpl, origin=DC_BASE)
        self._add(VADER_UNACTIVATED, tmpl, state="unactivated")
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                path, _, query = self.path.partition("?")
                params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                parts = path.strip("/").split("/")
                m = fake.manifests.get(parts[1]) if len(parts) >= 2 and parts[0] == "images" else None
                account = params.get("account")
                if m is not None and account and m["owner"] != account and not m.get("public"):
                    m = None
                if m is None:
                    self._send(
                        404, json.dumps({"code": "NotFoundError", "message": "no such image"}).encode()
                    )
                elif len(parts) == 2:
                    self._send(200, json.dumps(m).encode())
                elif len(parts) == 3 and parts[2] == "file":
                    self._send(200, fake.files[m["uuid"]], "application/octet-stream")
                else:
                    self._send(404, b"{}")

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _add(
        self,
        uuid: str,
        tmpl: dict[str, Any],
        *,
        state: str = "active",
        origin: str | None = None,
        owner: str = VADER,
        public: bool = False,
        bad_sha1: bool = False,
    ) -> None:
        m = copy.deepcopy(tmpl)
        m.update(uuid=uuid, name=f"synthetic-{uuid[:4]}", state=state, owner=owner, public=public)
        m.pop("origin", None)
        if origin:
            m["origin"] = origin
        if bad_sha1:
            m["files"][0]["sha1"] = "0" * 40
        self.manifests[uuid] = m
        self.files[uuid] = self.files[VADER_PRIVATE]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _self_signed(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ctx


class FileServer:
    """HTTPS server for AddImageFileFromUrl: /junk.bz2, /empty, /redirect, /missing."""

    def __init__(self, tmp: Path) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.server_agent = self.headers.get("User-Agent")
                if self.path == "/junk.bz2":
                    self._send(200, JUNK)
                elif self.path == "/empty":
                    self._send(200, b"")
                elif self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/junk.bz2")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._send(404, b"nope")

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = _self_signed(tmp).wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def remote() -> Iterator[FakeImgapi]:
    fake = FakeImgapi()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def files_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    srv = FileServer(tmp_path_factory.mktemp("tls"))
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, remote: FakeImgapi) -> Iterator[Stack]:
    s = start_stack(
        tmp_path_factory.mktemp("import"),
        mode="dc",
        remote_allowlist=["127.0.0.0/8"],
        allow_insecure=True,
        datacenter_name="us-east-1",
        imgapi_url_from_datacenter={
            "us-east-1": "http://127.0.0.1:9",
            "xdc": remote.url,
            "TestDc": remote.url,
        },
    )
    yield s
    s.stop()


@pytest.fixture()
def c(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client(**{"Accept-Version": "*"}) as client:
        yield client


def wait_job(c: httpx.Client, r: httpx.Response, timeout: float = 30) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"image_uuid", "job_uuid"}
    wfapi = r.headers["workflow-api"]
    assert wfapi.startswith("http://") and wfapi.count("/") == 2
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = httpx.get(f"{wfapi}/jobs/{body['job_uuid']}").json()
        if job["execution"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


# --- AdminImportImage from source + AddImageFile from source ---------------------------------------


def test_import_from_source_then_file(c: httpx.Client, remote: FakeImgapi) -> None:
    u = PUBLIC_OP
    error(
        c.post(f"/images/{u}?action=import&source={remote.url}&account={SDC}", json={}), 403, "OperatorOnly"
    )
    r = c.post(f"/images/{u}?action=import&source={remote.url}&skip_owner_check=maybe", json={})
    assert error(r, 422, "InvalidParameter")["errors"][0]["field"] == "skip_owner_check"
    r = c.post(f"/images/{u}?action=import&source={remote.url}", json={})
    assert r.status_code == 200, r.text
    img = r.json()
    src = remote.manifests[u]
    assert img["state"] == "unactivated" and img["files"] == []
    assert img["published_at"] == src["published_at"] and img["uuid"] == u
    assert r.headers["etag"]
    assert any(p.startswith(f"/images/{u}") for p in remote.requests)
    error(c.post(f"/images/{u}?action=import&source={remote.url}", json={}), 409, "ImageUuidAlreadyExists")

    r = c.put(f"/images/{u}/file?source={remote.url}", json={})
    assert r.status_code == 200, r.text
    assert r.json()["files"] == [{k: src["files"][0][k] for k in ("sha1", "size", "compression")}]
    assert c.post(f"/images/{u}?action=activate", json={}).json()["state"] == "active"
    f = c.get(f"/images/{u}/file")
    assert hashlib.sha1(f.content).hexdigest() == XDC_SHA1
    error(c.put(f"/images/{u}/file?source={remote.url}", json={}), 422, "ImageFilesImmutable")


def test_import_from_source_errors(c: httpx.Client, remote: FakeImgapi) -> None:
    missing = "77777777-7777-4777-8777-777777777777"
    body = error(
        c.post(f"/images/{missing}?action=import&source={remote.url}", json={}), 503, "RemoteSourceError"
    )
    assert missing in body["message"] and "no such image" in body["message"]
    for bad in (
        "http://169.254.169.254",
        "http://10.0.0.1:1",
        "http://[::1]:1",
        "http://localhost:1",
        "file:///x",
    ):
        r = c.post(f"/images/{missing}?action=import&source={bad}", json={})
        error(r, 503, "RemoteSourceError")
    # A source URL with a path and a channel query is honoured.
    r = c.post(f"/images/{missing}?action=import&source={remote.url}/?channel=dev", json={})
    error(r, 503, "RemoteSourceError")
    # AddImageFile from a source: remote sha1 mismatch -> Download, nothing attached.
    uuid = new_image(c)
    r = c.put(f"/images/{uuid}/file?source={remote.url}", json={})
    error(r, 503, "RemoteSourceError")  # the source does not know this uuid
    r = c.post(f"/images/{BAD_FILE}?action=import&source={remote.url}", json={})
    assert r.status_code == 200, r.text
    error(c.put(f"/images/{BAD_FILE}/file?source={remote.url}", json={}), 400, "Download")
    assert c.get(f"/images/{BAD_FILE}").json()["files"] == []
    assert c.delete(f"/images/{BAD_FILE}").status_code == 204


# --- AdminImportRemoteImage + jobs ---------------------------------------------------------------------


def test_import_remote_with_origin_chain(c: httpx.Client, remote: FakeImgapi, stack: Stack) -> None:
    r = c.post(f"/images/{LEVEL4}?action=import-remote&source={remote.url}", json={})
    job = wait_job(c, r)
    assert job["execution"] == "succeeded", job
    assert job["name"] == "import-remote-image-7.0.7" and job["task"] == "import-remote-image"
    assert job["params"]["origins"] == [BASE, LEVEL2, LEVEL3]  # root first
    assert job["params"]["image_uuid"] == LEVEL4 and job["params"]["skip_owner_check"] is False
    assert [s["name"] for s in job["chain_results"]] == [
        "origin_import_images",
        "import_image",
        "add_image_file",
        "activate_image",
    ]
    assert job["chain_results"][-1]["error"] == ""
    for u in (BASE, LEVEL2, LEVEL3, LEVEL4):
        img = c.get(f"/images/{u}").json()
        assert img["state"] == "active", img
        assert img["published_at"] == remote.manifests[u]["published_at"]
        assert img["files"][0]["sha1"] == XDC_SHA1
        assert img["owner"] == remote.manifests[u]["owner"]
    # Imported root-first: each origin was created before its child.
    pubs = [c.get(f"/images/{u}").json() for u in (BASE, LEVEL2, LEVEL3, LEVEL4)]
    assert [p.get("origin") for p in pubs] == [None, BASE, LEVEL2, LEVEL3]

    jobs = c.get(f"/images/{LEVEL4}/jobs").json()
    assert [j["uuid"] for j in jobs] == [job["uuid"]]
    assert c.get(f"/images/{LEVEL4}/jobs?task=import-remote-image&execution=succeeded").json() == jobs
    assert c.get(f"/images/{LEVEL4}/jobs?execution=failed").json() == []
    error(c.get("/jobs/88888888-8888-4888-8888-888888888888"), 404, "ResourceNotFound")

    # Already there now.
    r = c.post(f"/images/{LEVEL4}?action=import-remote&source={remote.url}", json={})
    error(r, 409, "ImageUuidAlreadyExists")


def test_import_remote_errors(c: httpx.Client, remote: FakeImgapi) -> None:
    u = FATHER
    body = error(c.post(f"/images/{u}?action=import-remote", json={}), 422, "ValidationFailed")
    assert body["errors"] == [{"field": "source", "code": "MissingParameter"}]
    r = c.post(f"/images/{u}?action=import-remote&source={remote.url}&account={SDC}", json={})
    error(r, 403, "OperatorOnly")
    r = c.post(f"/images/{u}?action=import-remote&source={remote.url}&skip_owner_check=yes", json={})
    error(r, 422, "InvalidParameter")
    r = c.post(f"/images/{u}?action=import-remote&source=http://169.254.169.254/", json={})
    error(r, 503, "RemoteSourceError")
    r = c.post(f"/images/{CHILD_OF_INACTIVE}?action=import-remote&source={remote.url}", json={})
    assert INACTIVE in error(r, 422, "OriginIsNotActive")["message"]
    error(c.get(f"/images/{CHILD_OF_INACTIVE}"), 404, "ResourceNotFound")


def test_failed_job_rolls_back(c: httpx.Client, remote: FakeImgapi) -> None:
    r = c.post(f"/images/{BAD_FILE}?action=import-remote&source={remote.url}", json={})
    job = wait_job(c, r)
    assert job["execution"] == "failed"
    last = job["chain_results"][-1]
    assert last["name"] == "add_image_file" and last["error"]["message"]
    assert [s["name"] for s in job["onerror_results"]] == ["delete_image", "origin_delete_images"]
    error(c.get(f"/images/{BAD_FILE}"), 404, "ResourceNotFound")


def test_import_remote_skip_owner_check(c: httpx.Client, remote: FakeImgapi) -> None:
    r = c.post(f"/images/{FATHER}?action=import-remote&source={remote.url}&skip_owner_check=true", json={})
    job = wait_job(c, r)
    assert job["execution"] == "succeeded", job
    assert job["params"]["origins"] == [] and job["params"]["skip_owner_check"] is True
    assert job["chain_results"][0]["result"] == "No origins (skipping import of origins)"
    assert c.get(f"/images/{FATHER}").json()["state"] == "active"


# --- ImportFromDatacenter -------------------------------------------------------------------------------


def test_import_from_datacenter_validation(c: httpx.Client) -> None:
    u = VADER_PRIVATE
    base = f"/images/{u}?action=import-from-datacenter"
    body = error(c.post(f"{base}&datacenter=xdc", json={}), 422, "ValidationFailed")
    assert body["errors"] == [{"field": "account", "code": "Invalid"}]
    error(c.post(f"{base}&datacenter=xdc&account=nope", json={}), 422, "ValidationFailed")
    body = error(c.post(f"{base}&account={VADER}", json={}), 422, "ValidationFailed")
    assert body["errors"] == [{"field": "datacenter", "code": "MissingParameter"}]
    body = error(c.post(f"{base}&account={VADER}&datacenter=mars", json={}), 422, "ValidationFailed")
    assert "valid datacenters names are: xdc, TestDc" in body["message"]
    assert body["errors"] == [{"field": "datacenter", "code": "Invalid"}]
    body = error(c.post(f"{base}&account={VADER}&datacenter=us-east-1", json={}), 422, "ValidationFailed")
    assert "xdc, TestDc" in body["message"]


def test_import_from_datacenter_remote_answers(c: httpx.Client) -> None:
    def post(u: str, account: str = VADER) -> httpx.Response:
        return c.post(f"/images/{u}?action=import-from-datacenter&datacenter=xdc&account={account}", json={})

    r = post(FATHER, LUKE)  # private to vader: the remote's 404 is passed through unchanged
    assert r.status_code == 404 and r.json() == {"code": "NotFoundError", "message": "no such image"}
    body = error(post(VADER_UNACTIVATED), 422, "ValidationFailed")
    assert body["errors"] == [] and "not active" in body["message"]
    body = error(post(DC_BASE), 401, "UnauthorizedError")  # public, visible, not vader's
    assert "not the owner" in body["message"]
    body = error(post(DC_CHILD), 404, "ResourceNotFound")
    assert DC_BASE in body["message"] and "must already exist" in body["message"]


def test_import_from_datacenter(c: httpx.Client) -> None:
    r = c.post(
        f"/images/{VADER_PRIVATE}?action=import-from-datacenter&datacenter=xdc&account={VADER}", json={}
    )
    job = wait_job(c, r)
    assert job["execution"] == "succeeded", job
    img = c.get(f"/images/{VADER_PRIVATE}").json()
    assert img["state"] == "active" and img["owner"] == VADER
    r = c.post(
        f"/images/{VADER_PRIVATE}?action=import-from-datacenter&datacenter=xdc&account={VADER}", json={}
    )
    error(r, 409, "ImageUuidAlreadyExists")


# --- AddImageFileFromUrl ---------------------------------------------------------------------------------


def from_url(c: httpx.Client, uuid: str, body: Any, query: str = "compression=bzip2") -> httpx.Response:
    return c.post(f"/images/{uuid}/file/from-url?{query}", json=body)


def test_add_file_from_url(c: httpx.Client, files_server: FileServer) -> None:
    uuid = new_image(c)
    r = from_url(c, uuid, {"file_url": f"{files_server.url}/junk.bz2"}, f"compression=bzip2&sha1={JUNK_SHA1}")
    assert r.status_code == 200, r.text
    assert r.json()["files"] == [{"sha1": JUNK_SHA1, "size": len(JUNK), "compression": "bzip2"}]
    assert c.get(f"/images/{uuid}/file").content == JUNK


def test_add_file_from_url_errors(c: httpx.Client, files_server: FileServer) -> None:
    uuid = new_image(c)
    url = files_server.url
    body = error(from_url(c, uuid, {"file_url": f"{url}/junk.bz2"}, ""), 422, "InvalidParameter")
    assert body["errors"] == [{"field": "compression", "code": "Missing"}]
    body = error(from_url(c, uuid, {}), 422, "InvalidParameter")
    assert body["errors"] == [{"field": "file_url", "code": "Missing"}]
    r = c.post(f"/images/{uuid}/file/from-url?compression=none")  # no body at all
    error(r, 422, "InvalidParameter")
    body = error(from_url(c, uuid, {"file_url": "http://example.com/x"}), 422, "InvalidParameter")
    assert body["errors"] == [{"field": "file_url", "code": "Invalid"}]
    # file_url errors come before storage errors.
    r = from_url(c, uuid, {"file_url": "http://example.com/x"}, "compression=none&storage=floppy")
    assert error(r, 422, "InvalidParameter")["errors"][0]["field"] == "file_url"
    r = c.post(
        f"/images/{uuid}/file/from-url?compression=none",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    error(r, 400, "InvalidContent")
    missing = "99999999-9999-4999-8999-999999999999"
    error(from_url(c, missing, {"file_url": f"{url}/junk.bz2"}), 404, "ResourceNotFound")
    assert "302" in error(from_url(c, uuid, {"file_url": f"{url}/redirect"}), 400, "Download")["message"]
    assert "404" in error(from_url(c, uuid, {"file_url": f"{url}/missing"}), 400, "Download")["message"]
    error(from_url(c, uuid, {"file_url": f"{url}/empty"}), 400, "Download")
    r = from_url(c, uuid, {"file_url": f"{url}/junk.bz2"}, f"compression=bzip2&sha1={'0' * 40}")
    error(r, 400, "Download")
    for bad in (
        "https://169.254.169.254/latest",
        "https://10.0.0.1:1/x",
        "https://[::ffff:a9fe:a9fe]/",
        "https://127.0.0.1:1/",
    ):
        assert error(from_url(c, uuid, {"file_url": bad}), 400, "Download")["message"].startswith(
            "Error getting"
        )
    assert c.get(f"/images/{uuid}").json()["files"] == []
    assert c.post(f"/images/{uuid}?action=activate", json={}).status_code == 422  # NoActivationNoFile
