"""The DockerImport gRPC service (docker.proto), hosted by the replication service process.

Imports and pushes run in threads of their own: a caller that goes away does not stop them.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from imgapi.v1 import common_pb2, docker_pb2, docker_pb2_grpc

from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import abort_with
from imgapi_common.ssrf import Allowlist
from replication.adapters.destination import Destination
from replication.adapters.docker.records import DockerImportRecords
from replication.adapters.docker.registry import Credentials, PushSession, Registry
from replication.adapters.leases import LeaseKeeper
from replication.adapters.store import Store
from replication.domain.docker.progress import Progress, dumps
from replication.domain.docker.reference import Reference
from replication.handlers.docker.importer import DockerImport
from replication.handlers.docker.push import DockerPush, PushRequest, check_push
from replication.handlers.docker.request import ImportRequest, check_request
from replication.settings import ReplicationSettings

log = logging.getLogger(__name__)

SERVICE_NAME = docker_pb2.DESCRIPTOR.services_by_name["DockerImport"].full_name
_END = None
R = TypeVar("R", bound=Registry)
T = TypeVar("T")


class DockerImportServicer(docker_pb2_grpc.DockerImportServicer):
    def __init__(
        self,
        destination: Callable[[common_pb2.CallerContext], Destination],
        allowlist: Allowlist,
        *,
        insecure: bool = False,
        user_agent: str = "imgapi/4.11.0",
        accept_oci: bool = False,
        records: DockerImportRecords | None = None,
    ) -> None:
        self.destination = destination
        self.allowlist = allowlist
        self.insecure = insecure
        self.user_agent = user_agent
        self.accept_oci = accept_oci
        #: Where imports are recorded to survive a restart (None: not recorded).
        self.records = records
        self._keeper: LeaseKeeper | None = None

    def ImportDockerImage(
        self, request: docker_pb2.ImportDockerImageRequest, context: grpc.ServicerContext
    ) -> Iterator[docker_pb2.DockerStreamEvent]:
        return _checked_stream(
            context, lambda: check_request(request), lambda req, emit: self._recorded(request, req, emit)
        )

    def PushDockerImage(
        self, request: docker_pb2.PushDockerImageRequest, context: grpc.ServicerContext
    ) -> Iterator[docker_pb2.DockerStreamEvent]:
        return _checked_stream(context, lambda: check_push(request), self._push)

    def _registry(self, cls: type[R], ref: Reference, credentials: Credentials | None) -> R:
        return cls(
            ref.repository,
            credentials,
            self.allowlist,
            insecure=self.insecure,
            user_agent=self.user_agent,
            accept_oci=self.accept_oci,
        )

    def _recorded(
        self, raw: docker_pb2.ImportDockerImageRequest, req: ImportRequest, emit: Callable[[str], None]
    ) -> None:
        """The import, recorded as running before it starts and as done/failed at its end."""
        if self.records is None:
            self._import(req, emit)
            return
        self._finish(self.records.start(raw), req, emit)

    def _finish(self, rid: str, req: ImportRequest, emit: Callable[[str], None]) -> None:
        assert self.records is not None
        errors: list[str] = []

        def watched(line: str) -> None:
            obj = json.loads(line)
            if obj.get("type") == "error":
                errors.append(f"{obj['error']['code']}: {obj['error']['message']}")
            emit(line)

        def stored(layer_uuid: str, blob_id: str) -> None:
            assert self.records is not None
            self.records.stored(rid, layer_uuid, blob_id)

        try:
            self._import(req, watched, stored)
        except BaseException:
            self.records.finish(rid, "InternalError: internal error")
            raise
        self.records.finish(rid, errors[0] if errors else None)

    def resume_unfinished(self) -> list[threading.Thread]:
        """Pull again, each in a background thread, the imports a gone process left running (their
        lease ran out) that this process claims; then keep, in a thread of its own, renewing the
        leases of this process's imports and taking over those of processes that go away later."""
        if self.records is None:
            return []
        threads = self._resume()
        if self._keeper is None:
            records = self.records
            self._keeper = LeaseKeeper(
                records.lease.seconds, [records.lease.renew, self._resume], "docker-leases"
            )
        return threads

    def stop(self) -> None:
        """Stop renewing leases (the imports of this process become others' to resume)."""
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None

    def _resume(self) -> list[threading.Thread]:
        assert self.records is not None
        threads = []
        for rec in self.records.unfinished():
            if not self.records.claim(rec.id):
                continue  # another process took it over first
            try:
                req = check_request(rec.request)
            except ImgapiError as e:  # the checks changed since it was accepted
                self.records.finish(rec.id, f"{e.code}: {e.message}")
                continue
            log.warning(
                "resuming docker import %s of %s (left unfinished by a process that is gone%s)",
                rec.id,
                req.reference.repository.canonical_name,
                "; its registry credentials were not kept: pulling anonymously" if rec.credentials else "",
            )

            def run(rid: str = rec.id, r: ImportRequest = req) -> None:
                try:
                    self._sweep(rid)
                except Exception:  # the blobs stay behind (logged); the pull goes on
                    log.exception("docker import %s: the blobs a gone process left were not swept", rid)
                try:
                    self._finish(rid, r, lambda line: log.debug("docker import %s: %s", rid, line))
                except Exception:
                    log.exception("resumed docker import %s failed", rid)

            t = threading.Thread(target=run, name="docker-resume", daemon=True)
            t.start()
            threads.append(t)
        return threads

    def _sweep(self, rid: str) -> None:
        """Delete the layer blobs the gone process of import ``rid`` downloaded that no layer image
        holds (it died before recording them in the catalog)."""
        assert self.records is not None
        dest = self.destination(common_pb2.CallerContext())
        try:
            for layer_uuid, blob_id in self.records.blobs(rid):
                image = dest.get(layer_uuid)
                if image is None or all(f.blob_id != blob_id for f in image.files):
                    dest.blobs.delete_orphans([blob_id], strict=True)
                    log.info("docker import %s: deleted blob %s a gone process left", rid, blob_id)
                self.records.forget_blob(rid, blob_id)
        finally:
            dest.close()

    def _import(
        self,
        req: ImportRequest,
        emit: Callable[[str], None],
        stored: Callable[[str, str], None] | None = None,
    ) -> None:
        progress = Progress(req.reference.repository.canonical_name, emit)
        dest = self.destination(common_pb2.CallerContext(channel=req.channel, request_id=req.request_id))
        registry = self._registry(Registry, req.reference, req.credentials)
        try:
            DockerImport(req, registry, dest, progress, stored).run()
        finally:
            registry.close()
            dest.close()

    def _push(self, req: PushRequest, emit: Callable[[str], None]) -> None:
        dest = self.destination(common_pb2.CallerContext(request_id=req.request_id))
        registry = self._registry(PushSession, req.reference, req.credentials)
        try:
            DockerPush(req, registry, dest, emit).run()
        finally:
            registry.close()
            dest.close()


def _checked_stream(
    context: grpc.ServicerContext, check: Callable[[], T], work: Callable[[T, Callable[[str], None]], None]
) -> Iterator[docker_pb2.DockerStreamEvent]:
    """The request's checks (a failure is the call's error status), then the stream of ``work``."""
    try:
        checked = check()
    except ImgapiError as e:
        abort_with(context, e)
        return
    yield from _streamed(lambda emit: work(checked, emit))


def _streamed(work: Callable[[Callable[[str], None]], None]) -> Iterator[docker_pb2.DockerStreamEvent]:
    """``started``, then the lines ``work`` emits from a thread of its own: a caller that goes away
    does not stop the work (its writes persist); the stream just has nobody to read it."""
    lines: queue.Queue[str | None] = queue.Queue()

    def run() -> None:
        try:
            work(lines.put)
        except Exception:
            log.exception("docker registry exchange failed")
            lines.put(
                dumps({"type": "error", "error": {"code": "InternalError", "message": "internal error"}})
            )
        finally:
            lines.put(_END)

    threading.Thread(target=run, name="docker-stream", daemon=True).start()
    yield docker_pb2.DockerStreamEvent(started=True)
    while (line := lines.get()) is not _END:
        yield docker_pb2.DockerStreamEvent(line_json=line)


def registration(settings: ReplicationSettings, store: Store) -> tuple[Any, DockerImportServicer, str]:
    """The (adder, servicer, service name) the replication server adds to serve DockerImport;
    imports are recorded in ``store`` (``servicer.resume_unfinished()`` restarts the left ones)."""

    def destination(caller: common_pb2.CallerContext) -> Destination:
        return Destination(
            settings.catalog_target, settings.blob_target, token=settings.internal_token, caller=caller
        )

    servicer = DockerImportServicer(
        destination,
        Allowlist.parse(settings.docker_registry_allowlist, "IMGAPI_REPLICATION_DOCKER_REGISTRY_ALLOWLIST"),
        insecure=settings.docker_registry_insecure,
        accept_oci=settings.docker_registry_oci,
        records=DockerImportRecords(store, settings.lease_seconds),
    )
    return docker_pb2_grpc.add_DockerImportServicer_to_server, servicer, SERVICE_NAME
