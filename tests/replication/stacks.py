"""Complete imgapi stacks on loopback for replication tests: catalog + blob gRPC servers in-process
(port 0), each with its own database and blob directory; replicators in-process or as subprocesses."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from imgapi.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    image_pb2,
    replication_pb2,
    replication_pb2_grpc,
)

from blob_client import BlobClient
from blob_service.api.server import create_server as create_blob_server
from catalog_service.api.server import create_server as create_catalog_server
from catalog_service.settings import CatalogSettings
from imgapi_common import deathsig
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import from_rpc_error, imgapi_status
from imgapi_common.ssrf import Allowlist
from replication.adapters.destination import Destination
from replication.adapters.store import Store
from replication.api.servicer import ReplicationServicer, translate_error
from replication.handlers.jobs.manager import JobManager
from tests.components import Shape, blob_settings

VADER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
LUKE = "91ba0e64-2547-11e2-a972-df579e5fddb3"
EMPEROR = "a0b6b534-2547-11e2-b758-63a2afd747d1"
SDC = "ba28f844-8cb4-f141-882d-46d6251e6a9f"
#: The test stacks run on loopback, which the SSRF guard of REST sources refuses unless listed.
LOOPBACK = ("127.0.0.0/8",)
ROOT = Path(__file__).resolve().parents[2]

OPERATOR = common_pb2.CallerContext()
READ_ALL = common_pb2.CallerContext(channel="*")
VIEW = common_pb2.ImageView(include_channels=True, include_admin_fields=True)
T = TypeVar("T")


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            got = fn()
        except Exception as e:  # a condition may fail while the system converges
            last = e
            got = None
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


def stop_all(stops: list[Callable[[], object]]) -> None:
    """Run every stop function (last started first); a failing one fails the teardown, after the rest."""
    errors: list[Exception] = []
    for stop in reversed(stops):
        try:
            stop()
        except Exception as e:  # collected: the remaining components must still be stopped
            errors.append(e)
    if errors:
        raise ExceptionGroup("teardown failed", errors)


_STATES = {
    "all": catalog_pb2.ListImagesRequest.STATE_ALL,
    "active": catalog_pb2.ListImagesRequest.STATE_ACTIVE,
}


@dataclass
class DC:
    """One datacenter: catalog + blob services with their own storage."""

    name: str
    tmp: Path
    catalog_target: str
    blob_target: str
    catalog: catalog_pb2_grpc.CatalogServiceStub
    blobs: BlobClient
    _stops: list[Callable[[], object]] = field(default_factory=list)

    def call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.catalog, method)(request, timeout=30)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e

    def destination(self) -> Destination:
        return Destination(self.catalog_target, self.blob_target)

    def stop(self) -> None:
        stop_all(self._stops)

    # --- writing images ------------------------------------------------------------------------

    def create(self, **manifest: Any) -> str:
        body: dict[str, Any] = {
            "name": f"img-{uuidlib.uuid4().hex[:8]}",
            "version": "1.0.0",
            "owner": VADER,
            "type": "zone-dataset",
            "os": "smartos",
            "public": True,
        }
        body.update(manifest)
        r = self.call(
            "CreateImage",
            catalog_pb2.CreateImageRequest(caller=OPERATOR, view=VIEW, manifest_json=json.dumps(body)),
        )
        return str(r.image.uuid)

    def attach_file(self, uuid: str, data: bytes) -> None:
        info = self.blobs.upload([data], expected_size=len(data))
        f = image_pb2.ImageFile(
            sha1=info.sha1,
            size=info.size,
            compression="none",
            content_md5=info.content_md5,
            blob_id=info.blob_id,
        )
        self.call("AttachImageFile", catalog_pb2.AttachImageFileRequest(caller=OPERATOR, uuid=uuid, file=f))

    def attach_icon(self, uuid: str, data: bytes, content_type: str = "image/png") -> None:
        info = self.blobs.upload([data], expected_size=len(data))
        icon = image_pb2.ImageIcon(
            sha1=info.sha1,
            size=info.size,
            content_type=content_type,
            content_md5=info.content_md5,
            blob_id=info.blob_id,
        )
        self.call(
            "AttachImageIcon", catalog_pb2.AttachImageIconRequest(caller=OPERATOR, uuid=uuid, icon=icon)
        )

    def activate(self, uuid: str) -> None:
        self.call("ActivateImage", catalog_pb2.ImageActionRequest(caller=OPERATOR, uuid=uuid))

    def publish(self, data: bytes, *, icon: bytes | None = None, **manifest: Any) -> str:
        uuid = self.create(**manifest)
        self.attach_file(uuid, data)
        if icon is not None:
            self.attach_icon(uuid, icon)
        self.activate(uuid)
        return uuid

    def update(self, uuid: str, body: dict[str, Any]) -> None:
        self.call(
            "UpdateImage",
            catalog_pb2.UpdateImageRequest(caller=OPERATOR, uuid=uuid, update_json=json.dumps(body)),
        )

    def disable(self, uuid: str, disabled: bool = True) -> None:
        method = "DisableImage" if disabled else "EnableImage"
        self.call(method, catalog_pb2.ImageActionRequest(caller=OPERATOR, uuid=uuid))

    def add_acl(self, uuid: str, accounts: list[str]) -> None:
        self.call(
            "AddImageAcl",
            catalog_pb2.ImageAclRequest(caller=OPERATOR, uuid=uuid, acl=accounts),
        )

    def delete(self, uuid: str) -> None:
        self.call("DeleteImage", catalog_pb2.DeleteImageRequest(caller=OPERATOR, uuid=uuid))

    # --- reading -------------------------------------------------------------------------------

    def get(self, uuid: str) -> image_pb2.Image | None:
        try:
            r = self.call("GetImage", catalog_pb2.GetImageRequest(caller=READ_ALL, view=VIEW, uuid=uuid))
        except ImgapiError as e:
            if e.code == "ResourceNotFound":
                return None
            raise
        return r.image  # type: ignore[no-any-return]

    def images(self, state: str = "all") -> dict[str, image_pb2.Image]:
        """Every image in ``state`` (``all`` or ``active``), page by page."""
        out: dict[str, image_pb2.Image] = {}
        marker = ""
        while True:
            r = self.call(
                "ListImages",
                catalog_pb2.ListImagesRequest(
                    caller=READ_ALL, view=VIEW, state=_STATES[state], limit=1000, marker_uuid=marker
                ),
            )
            page = [i for i in r.images if i.uuid != marker]
            for i in page:
                out[i.uuid] = i
            if len(r.images) < 1000 or not page:
                return out
            marker = page[-1].uuid

    def file_bytes(self, uuid: str) -> bytes:
        img = self.get(uuid)
        assert img is not None and img.files
        return b"".join(self.blobs.read(img.files[0].blob_id))


def start_dc(
    tmp: Path,
    name: str,
    *,
    database_url: str = "",
    checkpoint_bytes: int = 64 * 1024,
    admin_uuid: str = SDC,
    shape: Shape | None = None,
    mode: str = "dc",
    channels: list[dict[str, Any]] | None = None,
) -> DC:
    """One DC; on the production ``shape`` its catalog is on PostgreSQL and its blobs on S3."""
    shape = shape or Shape()
    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    stops: list[Callable[[], object]] = []
    if not database_url:
        database_url, drop_database = shape.database()
        stops.append(drop_database)
    cat_settings = CatalogSettings(
        bind="127.0.0.1:0",
        database_url=database_url or f"sqlite:///{d}/catalog.db",
        data_dir=d,
        mode=mode,  # type: ignore[arg-type]
        channels=channels or [],  # type: ignore[arg-type]
        admin_uuid=admin_uuid if mode == "dc" else None,
        max_workers=16,
    )
    server, port, _h, service = create_catalog_server(cat_settings)
    server.start()
    stops.append(lambda: server.stop(0).wait())
    stops.append(service.engine.dispose)
    extra = {"checkpoint_bytes": checkpoint_bytes} if shape.s3 is None else {}
    bserver, bport, _bh, bservice = create_blob_server(blob_settings(d / "blobs", shape.s3, **extra))
    bserver.start()
    stops.append(lambda: bserver.stop(0).wait())
    stops.append(bservice.stop)
    cat_target, blob_target = f"127.0.0.1:{port}", f"127.0.0.1:{bport}"
    cat_ch = grpc.insecure_channel(cat_target)
    blob_ch = grpc.insecure_channel(blob_target)
    stops.append(cat_ch.close)
    stops.append(blob_ch.close)
    return DC(
        name,
        d,
        cat_target,
        blob_target,
        catalog_pb2_grpc.CatalogServiceStub(cat_ch),
        BlobClient(blob_ch),
        stops,
    )


# --- replicators -------------------------------------------------------------------------------------


@dataclass
class Replicator:
    """A replication service (in-process) in front of ``dest``, with its gRPC status API."""

    manager: JobManager
    stub: replication_pb2_grpc.ReplicationServiceStub
    target: str
    _stops: list[Callable[[], object]]

    def create_job(self, **spec: Any) -> str:
        filters = spec.pop("filters", None)
        msg = replication_pb2.JobSpec(**spec)
        if filters:
            msg.filters.CopyFrom(replication_pb2.JobFilters(**filters))
        return str(self.stub.CreateJob(replication_pb2.CreateJobRequest(spec=msg), timeout=10).id)

    def job(self, job_id: str) -> replication_pb2.Job:
        return self.stub.GetJob(replication_pb2.GetJobRequest(id=job_id), timeout=10)

    def wait_job(
        self, job_id: str, what: str, pred: Callable[[replication_pb2.Job], bool], timeout: float = 60
    ) -> replication_pb2.Job:
        def check() -> replication_pb2.Job | None:
            j = self.job(job_id)
            return j if pred(j) else None

        return wait_for(what, check, timeout=timeout)

    def stop(self) -> None:
        stop_all(self._stops)


def start_replicator(
    tmp: Path,
    dest: DC,
    name: str = "replicator",
    database_url: str = "",
    source_allowlist: Sequence[str] = LOOPBACK,
    shape: Shape | None = None,
) -> Replicator:
    """A replication service; on the production ``shape`` its job store is on PostgreSQL."""
    from imgapi_common.grpc_server import build_server
    from replication.api.servicer import SERVICE_NAME

    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    drop_database: Callable[[], object] = lambda: None  # noqa: E731
    if not database_url:
        database_url, drop_database = (shape or Shape()).database()
    store = Store(database_url or f"sqlite:///{d}/replication.db")
    manager = JobManager(store, dest.destination, source_allowlist=Allowlist.parse(list(source_allowlist)))
    server, port, _h = build_server(
        [(replication_pb2_grpc.add_ReplicationServiceServicer_to_server, ReplicationServicer(manager))],
        [SERVICE_NAME],
        "127.0.0.1:0",
        max_workers=4,
        status_of=imgapi_status(translate_error),
    )
    server.start()
    manager.start_all()
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    stops: list[Callable[[], object]] = [
        drop_database,
        store.close,
        manager.stop_all,
        lambda: server.stop(0).wait(),
        ch.close,
    ]
    return Replicator(manager, replication_pb2_grpc.ReplicationServiceStub(ch), f"127.0.0.1:{port}", stops)


@contextlib.contextmanager
def replicator_process(
    tmp: Path, dest: DC, *, name: str = "replicator-proc", extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m replication`` as a subprocess (killed with the test, and if the test dies)."""
    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    port_file = d / "port"
    port_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "IMGAPI_REPLICATION_BIND": "127.0.0.1:0",
        "IMGAPI_REPLICATION_DATABASE_URL": f"sqlite:///{d}/replication.db",
        "IMGAPI_REPLICATION_CATALOG_TARGET": dest.catalog_target,
        "IMGAPI_REPLICATION_BLOB_TARGET": dest.blob_target,
        "IMGAPI_REPLICATION_PORT_FILE": str(port_file),
        "IMGAPI_REPLICATION_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    with open(d / "stderr.log", "ab") as err:
        proc = subprocess.Popen(
            deathsig.wrap([sys.executable, "-m", "replication"], signal.SIGKILL),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_for("replicator port", lambda: port_file.exists() or proc.poll() is not None, timeout=30)
        if proc.poll() is not None:
            raise AssertionError(f"replicator exited: {(d / 'stderr.log').read_text()[-2000:]}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def process_stub(tmp: Path, name: str = "replicator-proc") -> replication_pb2_grpc.ReplicationServiceStub:
    port = (tmp / name / "port").read_text().strip()
    return replication_pb2_grpc.ReplicationServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def start_gateway(dc: DC) -> str:
    """The REST gateway (uvicorn in a thread) in front of ``dc``; returns its base URL."""
    import threading

    import uvicorn

    from gateway.server import uvicorn_config
    from gateway.settings import GatewaySettings
    from tests.components import free_port

    port = free_port()
    settings = GatewaySettings(
        host="127.0.0.1",
        port=port,
        catalog_target=dc.catalog_target,
        blob_target=dc.blob_target,
        host_name=f"imgapi-{dc.name}",
    )
    server = uvicorn.Server(uvicorn_config(settings, log_level="error"))
    thread = threading.Thread(target=server.run, name=f"gateway-{dc.name}", daemon=True)
    thread.start()
    wait_for("gateway started", lambda: server.started or not thread.is_alive(), timeout=30)
    if not thread.is_alive():
        raise AssertionError("gateway did not start")

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    dc._stops.insert(0, stop)
    return f"http://127.0.0.1:{port}"
