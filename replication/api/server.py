"""Assembling the replication gRPC server: the store, the job manager, the import runner, the
ReplicationService and DockerImport servicers."""

from __future__ import annotations

import grpc
from grpc_health.v1.health import HealthServicer
from imgapi.v1 import replication_pb2_grpc

from imgapi_common.grpc_errors import imgapi_status
from imgapi_common.grpc_server import build_server
from imgapi_common.ssrf import Allowlist
from replication.adapters.destination import Destination
from replication.adapters.store import Store
from replication.api.docker_servicer import DockerImportServicer
from replication.api.docker_servicer import registration as docker_registration
from replication.api.servicer import SERVICE_NAME, ReplicationServicer, translate_error
from replication.handlers.imports.runner import ImportRunner
from replication.handlers.jobs.manager import JobManager
from replication.settings import ReplicationSettings


def create_server(
    settings: ReplicationSettings,
) -> tuple[grpc.Server, int, HealthServicer, JobManager, ImportRunner, DockerImportServicer]:
    """Build (not start) the replication server; jobs start with ``manager.start_all()``, and
    ``imports.close()`` cancels the running import jobs at shutdown."""
    store = Store(settings.effective_database_url())
    token = settings.internal_token
    manager = JobManager(
        store,
        lambda: Destination(settings.catalog_target, settings.blob_target, token=token),
        source_token=token,
        source_allowlist=Allowlist.parse(settings.source_allowlist, "IMGAPI_REPLICATION_SOURCE_ALLOWLIST"),
    )
    imports = ImportRunner(settings, store)
    servicer = ReplicationServicer(manager, imports)
    docker_add, docker_servicer, docker_name = docker_registration(settings, store)
    server, port, health = build_server(
        [
            (replication_pb2_grpc.add_ReplicationServiceServicer_to_server, servicer),
            (docker_add, docker_servicer),
        ],
        [SERVICE_NAME, docker_name],
        settings.bind,
        max_workers=settings.max_workers,
        internal_token=token,
        status_of=imgapi_status(translate_error),
    )
    return server, port, health, manager, imports, docker_servicer
