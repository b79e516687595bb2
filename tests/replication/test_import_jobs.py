"""Remote imports as jobs of the replication service, through its gRPC API (ImportImage,
GetImportJob, ListImportJobs): the checks before a job starts, the job's WFAPI record, and the
record surviving a restart of the service (a job cut by the stop is recorded as canceled)."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import grpc
import pytest
from imgapi.v1 import common_pb2, replication_pb2, replication_pb2_grpc

from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import from_rpc_error
from tests.components import Shape
from tests.gateway.conftest import start_replication
from tests.gateway.test_import import VADER_PRIVATE, FakeImgapi, QuietServer
from tests.replication.stacks import DC, process_stub, replicator_process, start_dc, wait_for

OPERATOR = common_pb2.CallerContext()
FINISHED = ("succeeded", "failed", "canceled")


class GatedImgapi:
    """One image whose file GET waits until ``release`` is set (or the server closes)."""

    def __init__(self, manifest: dict[str, Any], data: bytes) -> None:
        self.manifest = manifest
        self.release = threading.Event()
        self.file_requested = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].strip("/")
                if path == f"images/{fake.manifest['uuid']}":
                    return self._send(200, json.dumps(fake.manifest).encode())
                if path == f"images/{fake.manifest['uuid']}/file":
                    fake.file_requested.set()
                    fake.release.wait(30)
                    return self._send(200, data)
                return self._send(404, b'{"code": "ResourceNotFound", "message": "no such image"}')

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Service:
    """The replication service on ``database_url``, restartable."""

    tmp: Path
    dc: DC
    database_url: str
    target: str = ""
    stub: replication_pb2_grpc.ReplicationServiceStub | None = None
    _stop: Callable[[], None] | None = None
    _channel: grpc.Channel | None = None

    def start(self, remote_url: str) -> None:
        self.target, self._stop = start_replication(
            self.tmp,
            self.dc.catalog_target,
            self.dc.blob_target,
            self.database_url,
            remote_allowlist=["127.0.0.0/8"],
            datacenter_name="here",
            imgapi_url_from_datacenter={"here": "http://127.0.0.1:9", "there": remote_url},
        )
        self._channel = grpc.insecure_channel(self.target)
        self.stub = replication_pb2_grpc.ReplicationServiceStub(self._channel)

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._stop is not None:
            self._stop()
        self._stop = None

    def call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.stub, method)(request, timeout=30)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e

    def wait(self, job_uuid: str) -> replication_pb2.ImportJob:
        deadline = time.monotonic() + 60
        while True:
            job: replication_pb2.ImportJob = self.call(
                "GetImportJob", replication_pb2.GetImportJobRequest(uuid=job_uuid)
            )
            if job.execution in FINISHED:
                return job
            assert time.monotonic() < deadline, job
            time.sleep(0.05)


@pytest.fixture()
def remote() -> Iterator[FakeImgapi]:
    fake = FakeImgapi()
    yield fake
    fake.close()


@pytest.fixture()
def service(tmp_path: Path, shape: Shape, remote: FakeImgapi) -> Iterator[Service]:
    dc = start_dc(tmp_path, "dest", shape=shape)
    database_url, drop_database = shape.database()
    svc = Service(tmp_path, dc, database_url or f"sqlite:///{tmp_path}/replication.db")
    svc.start(remote.url)
    yield svc
    svc.stop()
    drop_database()
    dc.stop()


def import_request(uuid: str, source: str) -> replication_pb2.ImportImageRequest:
    return replication_pb2.ImportImageRequest(caller=OPERATOR, uuid=uuid, source=source)


def test_import_job_runs_and_its_record_survives_a_restart(service: Service, remote: FakeImgapi) -> None:
    res = service.call("ImportImage", import_request(VADER_PRIVATE, remote.url))
    assert res.WhichOneof("answer") == "job"
    assert res.job.task == "import-remote-image" and res.job.name == "import-remote-image-7.0.7"
    assert res.job.params.image_uuid == VADER_PRIVATE and res.job.params.source == remote.url
    job = service.wait(res.job.uuid)
    assert job.execution == "succeeded", job
    assert [s.name for s in job.chain_results] == [
        "origin_import_images",
        "import_image",
        "add_image_file",
        "activate_image",
    ]
    assert not any(s.HasField("error") for s in job.chain_results)
    image = service.dc.get(VADER_PRIVATE)
    assert image is not None and image.state == "active"
    listed = service.call("ListImportJobs", replication_pb2.ListImportJobsRequest(image_uuid=VADER_PRIVATE))
    assert [j.uuid for j in listed.jobs] == [job.uuid]
    none = replication_pb2.ListImportJobsRequest(image_uuid=VADER_PRIVATE, execution="failed")
    assert list(service.call("ListImportJobs", none).jobs) == []
    # A second import of the same image is refused before any job starts.
    with pytest.raises(ImgapiError) as e:
        service.call("ImportImage", import_request(VADER_PRIVATE, remote.url))
    assert e.value.code == "ImageUuidAlreadyExists"

    service.stop()
    service.start(remote.url)
    again = service.call("GetImportJob", replication_pb2.GetImportJobRequest(uuid=job.uuid))
    assert again == job
    listed = service.call("ListImportJobs", replication_pb2.ListImportJobsRequest(image_uuid=VADER_PRIVATE))
    assert [j.uuid for j in listed.jobs] == [job.uuid]


def test_a_job_cut_by_a_stop_is_recorded_as_canceled(service: Service, remote: FakeImgapi) -> None:
    u = str(uuidlib.uuid4())
    manifest = copy.deepcopy(remote.manifests[VADER_PRIVATE])
    manifest["uuid"] = u
    gated = GatedImgapi(manifest, remote.files[VADER_PRIVATE])
    try:
        res = service.call("ImportImage", import_request(u, gated.url))
        assert gated.file_requested.wait(30)
        running = service.call("GetImportJob", replication_pb2.GetImportJobRequest(uuid=res.job.uuid))
        assert running.execution == "running"
        service.stop()
    finally:
        gated.close()
    service.start(remote.url)
    job = service.call("GetImportJob", replication_pb2.GetImportJobRequest(uuid=res.job.uuid))
    assert job.execution == "canceled"
    last = job.chain_results[-1]
    assert last.name == "cancel" and last.error.name == "Canceled" and "shutting down" in last.error.message
    assert not last.error.HasField("code")


def test_checks_before_the_job(service: Service, remote: FakeImgapi) -> None:
    with pytest.raises(ImgapiError) as e:
        service.call("GetImportJob", replication_pb2.GetImportJobRequest(uuid=str(uuidlib.uuid4())))
    assert e.value.code == "ResourceNotFound"
    missing = str(uuidlib.uuid4())
    with pytest.raises(ImgapiError) as e:
        service.call("ImportImage", import_request(missing, remote.url))
    assert e.value.code == "RemoteSourceError" and "no such image" in e.value.message
    # The SSRF guard applies to the service's fetches.
    with pytest.raises(ImgapiError) as e:
        service.call("ImportImage", import_request(missing, "http://169.254.169.254"))
    assert e.value.code == "RemoteSourceError" and "forbidden" in e.value.message
    dc = replication_pb2.ImportImageRequest(caller=OPERATOR, uuid=missing, account=str(uuidlib.uuid4()))
    for name, words in (("nowhere", "is not supported"), ("here", "is the same datacenter")):
        dc.datacenter = name
        with pytest.raises(ImgapiError) as e:
            service.call("ImportImage", dc)
        assert e.value.code == "ValidationFailed" and words in e.value.message
        assert e.value.message.endswith("valid datacenters names are: there")
    # The datacenter's own HTTP error answer is handed back as it is.
    dc.datacenter = "there"
    res = service.call("ImportImage", dc)
    assert res.WhichOneof("answer") == "remote_answer"
    assert res.remote_answer.status == 404
    assert json.loads(res.remote_answer.body_json) == {"code": "NotFoundError", "message": "no such image"}


def test_import_manifest_passes_the_catalog_answer_on(service: Service, remote: FakeImgapi) -> None:
    req = replication_pb2.ImportManifestRequest(
        caller=OPERATOR, view=common_pb2.ImageView(), uuid=VADER_PRIVATE, source=remote.url
    )
    image = service.call("ImportManifest", req).image
    assert image.uuid == VADER_PRIVATE and image.state == "unactivated" and not image.files
    assert json.loads(image.view_json)["published_at"] == remote.manifests[VADER_PRIVATE]["published_at"]
    with pytest.raises(ImgapiError) as e:  # the catalog's refusal, through the replication service
        service.call("ImportManifest", req)
    assert e.value.code == "ImageUuidAlreadyExists" and e.value.http_status == 409


def test_a_job_of_a_killed_process_is_closed_at_the_next_start(tmp_path: Path, remote: FakeImgapi) -> None:
    dc = start_dc(tmp_path, "dest")
    u = str(uuidlib.uuid4())
    manifest = copy.deepcopy(remote.manifests[VADER_PRIVATE])
    manifest["uuid"] = u
    gated = GatedImgapi(manifest, remote.files[VADER_PRIVATE])
    # the killed process's lease on its job runs out 1.5 s after its last renewal
    env = {"IMGAPI_GATEWAY_REMOTE_ALLOWLIST": '["127.0.0.0/8"]', "IMGAPI_REPLICATION_LEASE_SECONDS": "1.5"}
    try:
        with replicator_process(tmp_path, dc, extra_env=env) as proc:
            stub = process_stub(tmp_path)
            res = stub.ImportImage(import_request(u, gated.url), timeout=30)
            assert gated.file_requested.wait(30)
            proc.kill()  # no shutdown: the record still says running
        with replicator_process(tmp_path, dc, extra_env=env):
            stub = process_stub(tmp_path)
            get = replication_pb2.GetImportJobRequest(uuid=res.job.uuid)

            def closed() -> replication_pb2.ImportJob | None:
                j: replication_pb2.ImportJob = stub.GetImportJob(get, timeout=30)
                return j if j.execution != "running" else None

            job = wait_for("the left job closed", closed)
        assert job.execution == "canceled"
        assert [s.name for s in job.chain_results][-1] == "cancel"
        assert job.chain_results[-1].error.message == "job canceled (the replication service restarted)"
    finally:
        gated.close()
        dc.stop()
