"""AdminImportRemoteImage is a job of the replication service, run by its copier (docs/replication.md):
a file whose stream breaks mid-way continues from the blob upload's committed offset (the bytes
already stored are not sent again), and the source is read through the SSRF-safe fetcher."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from imgapi_common.remote_imgapi import Remote
from replication.adapters.fetcher_transport import FetcherTransport
from replication.adapters.rest_source import RestSource
from replication.adapters.sources import SourceError
from replication.handlers.copy.reports import CopyMilestone
from replication.handlers.imports.with_origins import import_image_with_origins
from replication.settings import ReplicationSettings
from tests.gateway.conftest import SDC, Stack, start_stack
from tests.gateway.test_import import QuietServer, wait_job
from tests.replication.stacks import DC, start_dc

SIZE = 3 * 1024 * 1024
CUT = SIZE // 2  # the first GET of each file ends here (the connection is closed)


class FlakyImgapi:
    """``GET /images/:uuid`` and ``GET /images/:uuid/file``; the first file GET of each image is cut."""

    def __init__(self) -> None:
        self.manifests: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.file_gets: dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                m = fake.manifests.get(parts[1]) if len(parts) >= 2 and parts[0] == "images" else None
                if m is None:
                    return self._send(404, b'{"code": "ResourceNotFound", "message": "no such image"}')
                if len(parts) == 2:
                    return self._send(200, json.dumps(m).encode())
                if len(parts) != 3 or parts[2] != "file":
                    return self._send(404, b'{"code": "ResourceNotFound", "message": "nope"}')
                u = m["uuid"]
                n = fake.file_gets[u] = fake.file_gets.get(u, 0) + 1
                data = fake.files[u]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if n == 1:  # the link drops half-way
                    self.wfile.write(data[:CUT])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                self.wfile.write(data)
                return None

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, uuid: str) -> bytes:
        data = os.urandom(SIZE)
        self.files[uuid] = data
        self.manifests[uuid] = {
            "v": 2,
            "uuid": uuid,
            "owner": SDC,
            "name": f"flaky-{uuid[:8]}",
            "version": "1.0.0",
            "state": "active",
            "disabled": False,
            "public": True,
            "published_at": "2020-01-02T03:04:05.678Z",
            "os": "smartos",
            "type": "zone-dataset",
            "files": [{"sha1": hashlib.sha1(data).hexdigest(), "size": SIZE, "compression": "none"}],
        }
        return data

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def flaky() -> Iterator[FlakyImgapi]:
    fake = FlakyImgapi()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("import-copier"), mode="dc", remote_allowlist=["127.0.0.0/8"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop in a thread: what the import runner's loop is to its jobs."""
    lp = asyncio.new_event_loop()
    t = threading.Thread(target=lp.run_forever, daemon=True)
    t.start()
    yield lp
    lp.call_soon_threadsafe(lp.stop)
    t.join(5)
    lp.close()


@pytest.fixture()
def dest_dc(tmp_path: Path) -> Iterator[DC]:
    dc = start_dc(tmp_path, "dest")
    yield dc
    dc.stop()


def new_uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def test_import_remote_continues_a_broken_file(stack: Stack, flaky: FlakyImgapi) -> None:
    u = new_uuid()
    data = flaky.add(u)
    with stack.client(**{"Accept-Version": "*"}) as c:
        job = wait_job(c, c.post(f"/images/{u}?action=import-remote&source={flaky.url}", json={}))
        assert job["execution"] == "succeeded", job
        assert [s["name"] for s in job["chain_results"]] == [
            "origin_import_images",
            "import_image",
            "add_image_file",
            "activate_image",
        ]
        sha1 = hashlib.sha1(data).hexdigest()
        assert job["chain_results"][2]["result"] == f"Image {u} file added"
        img = c.get(f"/images/{u}").json()
        assert img["state"] == "active" and img["published_at"] == flaky.manifests[u]["published_at"]
        assert img["files"][0]["sha1"] == sha1 and img["files"][0]["size"] == SIZE
        assert c.get(f"/images/{u}/file").content == data
    assert flaky.file_gets[u] == 2  # the cut stream, then the continuation


def test_copier_sends_only_the_missing_bytes(
    flaky: FlakyImgapi, dest_dc: DC, loop: asyncio.AbstractEventLoop
) -> None:
    u = new_uuid()
    data = flaky.add(u)
    settings = ReplicationSettings(remote_allowlist=["127.0.0.0/8"])
    source = RestSource(flaky.url, transport=FetcherTransport(Remote(settings.remote(), flaky.url), loop))
    dest = dest_dc.destination()
    sent: list[tuple[int, int]] = []  # (offset, bytes) of every write to the blob service
    write = dest.blobs.write

    def counting_write(upload_id: str, offset: int, chunks: Iterable[bytes]) -> int:
        n = 0

        def counted() -> Iterator[bytes]:
            nonlocal n
            for chunk in chunks:
                n += len(chunk)
                yield chunk

        try:
            return write(upload_id, offset, counted())
        finally:
            sent.append((offset, n))

    dest.blobs.write = counting_write  # type: ignore[method-assign,assignment]
    events: list[CopyMilestone] = []
    try:
        img = import_image_with_origins(source, dest, u, on_progress=events.append, backoff=0.01)
    finally:
        source.close()
        dest.close()
    assert img.state == "active" and img.files[0].sha1 == hashlib.sha1(data).hexdigest()
    assert dest_dc.file_bytes(u) == data
    resumed = [e for e in events if e.kind == "resume"]
    assert len(resumed) == 1 and 0 < resumed[0].done <= CUT, events
    assert len(sent) == 2 and sent[1][0] == resumed[0].done
    assert sum(n for _, n in sent) == SIZE  # nothing was sent twice
    kinds = [e.kind for e in events if e.kind != "bytes"]
    assert kinds == ["begin", "imported", "resume", "attached", "activated"]
    assert flaky.file_gets[u] == 2


def test_fetcher_transport_keeps_the_ssrf_rules(
    flaky: FlakyImgapi, dest_dc: DC, loop: asyncio.AbstractEventLoop
) -> None:
    u = new_uuid()
    flaky.add(u)
    dest = dest_dc.destination()
    try:
        for url, settings in (
            (flaky.url, ReplicationSettings()),  # loopback, not allow-listed
            ("http://169.254.169.254", ReplicationSettings(remote_allowlist=["127.0.0.0/8"])),
        ):
            source = RestSource(url, transport=FetcherTransport(Remote(settings.remote(), url), loop))
            started = time.monotonic()
            with pytest.raises(SourceError) as e:
                import_image_with_origins(source, dest, u)
            assert not e.value.transient and "forbidden address" in str(e.value)
            assert time.monotonic() - started < 5
            source.close()
    finally:
        dest.close()
    assert dest_dc.get(u) is None
    assert u not in flaky.file_gets


def test_blocked_source_fails_before_the_job(stack: Stack) -> None:
    with stack.client(**{"Accept-Version": "*"}) as c:
        r = c.post(f"/images/{new_uuid()}?action=import-remote&source=http://10.1.2.3:1", json={})
        assert r.status_code == 503 and r.json()["code"] == "RemoteSourceError", r.text
