"""The DockerImport gRPC service (docker.proto), hosted by the replication service process.

The import itself runs in a thread of its own: a caller that goes away does not stop it (its writes
persist), the stream just has nobody to read it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from imgapi.v1 import common_pb2, docker_pb2, docker_pb2_grpc

from imgapi_common.errors import ImgapiError, abort_with
from imgapi_common.ssrf import Allowlist
from replication.copier import Destination
from replication.docker.importer import DockerImport
from replication.docker.progress import Progress
from replication.docker.registry import Registry
from replication.docker.request import ImportRequest, check_request
from replication.settings import ReplicationSettings

log = logging.getLogger(__name__)

SERVICE_NAME = docker_pb2.DESCRIPTOR.services_by_name["DockerImport"].full_name
_END = None


class DockerImportServicer(docker_pb2_grpc.DockerImportServicer):
    def __init__(
        self,
        destination: Callable[[common_pb2.CallerContext], Destination],
        allowlist: Allowlist,
        *,
        insecure: bool = False,
        user_agent: str = "imgapi/4.11.0",
    ) -> None:
        self.destination = destination
        self.allowlist = allowlist
        self.insecure = insecure
        self.user_agent = user_agent

    def ImportDockerImage(
        self, request: docker_pb2.ImportDockerImageRequest, context: grpc.ServicerContext
    ) -> Iterator[docker_pb2.DockerImportEvent]:
        try:
            checked = check_request(request)
        except ImgapiError as e:
            abort_with(context, e)
            return
        lines: queue.Queue[str | None] = queue.Queue()
        caller = common_pb2.CallerContext(channel=checked.channel, request_id=checked.request_id)
        threading.Thread(
            target=self._run, args=(checked, caller, lines), name="docker-import", daemon=True
        ).start()
        yield docker_pb2.DockerImportEvent(started=True)
        while (line := lines.get()) is not _END:
            yield docker_pb2.DockerImportEvent(line_json=line)

    def _run(self, req: ImportRequest, caller: common_pb2.CallerContext, lines: queue.Queue[Any]) -> None:
        progress = Progress(req.reference.repository.canonical_name, lines.put)
        try:
            dest = self.destination(caller)
        except Exception:
            log.exception("docker import: no destination")
            progress.error("InternalError", "internal error")
            lines.put(_END)
            return
        registry = Registry(
            req.reference.repository,
            req.credentials,
            self.allowlist,
            insecure=self.insecure,
            user_agent=self.user_agent,
        )
        try:
            DockerImport(req, registry, dest, progress).run()
        finally:
            registry.close()
            dest.close()
            lines.put(_END)


def registration(settings: ReplicationSettings) -> tuple[Any, DockerImportServicer, str]:
    """The (adder, servicer, service name) the replication server adds to serve DockerImport."""

    def destination(caller: common_pb2.CallerContext) -> Destination:
        return Destination(
            settings.catalog_target, settings.blob_target, token=settings.internal_token, caller=caller
        )

    servicer = DockerImportServicer(
        destination,
        Allowlist.parse(settings.docker_registry_allowlist, "IMGAPI_REPLICATION_DOCKER_REGISTRY_ALLOWLIST"),
        insecure=settings.docker_registry_insecure,
    )
    return docker_pb2_grpc.add_DockerImportServicer_to_server, servicer, SERVICE_NAME
