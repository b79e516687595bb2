"""The ReplicationService servicer (replication.proto): replication jobs over a :class:`JobManager`,
remote import jobs over an :class:`ImportRunner`; job specs and jobs <-> messages."""

from __future__ import annotations

import logging

import grpc
from imgapi.v1 import replication_pb2, replication_pb2_grpc

from imgapi_common.errors import ImgapiError, invalid_parameter, not_found
from imgapi_common.grpc_errors import from_rpc_error
from replication.adapters.store import JobRow
from replication.domain.filters import Filters
from replication.handlers.imports.runner import ImportRunner
from replication.handlers.jobs.manager import JobManager
from replication.handlers.jobs.spec import JobSpec

log = logging.getLogger(__name__)

SERVICE_NAME = replication_pb2.DESCRIPTOR.services_by_name["ReplicationService"].full_name

_KIND = {replication_pb2.JobSpec.SOURCE_GRPC: "grpc", replication_pb2.JobSpec.SOURCE_REST: "rest"}


def spec_from_message(m: replication_pb2.JobSpec) -> JobSpec:
    f = m.filters
    return JobSpec(
        name=m.name,
        source_kind=_KIND.get(m.source_kind, "grpc"),
        source_catalog=m.source_catalog,
        source_blob=m.source_blob,
        source_url=m.source_url,
        filters=Filters(
            owner=f.owner,
            name=f.name,
            type=f.type,
            os=f.os,
            channel=f.channel,
            public=f.public,
            tags=dict(f.tags),
        ),
        propagate_deletes=m.propagate_deletes,
        concurrency=m.concurrency or 4,
        bandwidth_limit=m.bandwidth_limit,
        poll_seconds=m.poll_seconds or 5.0,
    )


def spec_message(s: JobSpec) -> replication_pb2.JobSpec:
    f = s.filters
    return replication_pb2.JobSpec(
        name=s.name,
        source_kind=(
            replication_pb2.JobSpec.SOURCE_REST
            if s.source_kind == "rest"
            else replication_pb2.JobSpec.SOURCE_GRPC
        ),
        source_catalog=s.source_catalog,
        source_blob=s.source_blob,
        source_url=s.source_url,
        filters=replication_pb2.JobFilters(
            owner=f.owner,
            name=f.name,
            type=f.type,
            os=f.os,
            channel=f.channel,
            public=f.public,
            tags=dict(f.tags),
        ),
        propagate_deletes=s.propagate_deletes,
        concurrency=s.concurrency,
        bandwidth_limit=s.bandwidth_limit,
        poll_seconds=s.poll_seconds,
    )


def job_message(job: JobRow, live: dict[str, tuple[int, int]]) -> replication_pb2.Job:
    spec = JobSpec.from_dict(job.spec)
    lag = job.pending if spec.source_kind == "rest" else max(0, job.source_head - job.cursor)
    msg = replication_pb2.Job(
        id=job.id,
        spec=spec_message(spec),
        state=job.state,
        cursor=job.cursor,
        source_head=job.source_head,
        lag=lag,
        bytes_copied=job.bytes_copied,
        images_copied=job.images_copied,
        errors=job.errors,
        last_error=job.last_error,
        synced=job.synced,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )
    for c in job.conflicts:
        msg.conflicts.append(replication_pb2.Conflict(**c))
    for a in job.active:
        done = live.get(a["image_uuid"], (a["bytes_done"], a["bytes_total"]))[0]
        msg.active.append(
            replication_pb2.ImageProgress(
                image_uuid=a["image_uuid"],
                status=a["status"],
                upload_id=a["upload_id"],
                bytes_done=done,
                bytes_total=a["bytes_total"],
                attempts=a["attempts"],
                last_error=a["last_error"],
            )
        )
    return msg


def translate_error(exc: Exception, method: str) -> ImgapiError | None:
    """A catalog/blob call of an import failed: its IMGAPI error as it is; a ValueError of a job spec is
    the caller's mistake (InvalidParameter); others are unexpected."""
    if isinstance(exc, grpc.RpcError):
        return from_rpc_error(exc)
    return invalid_parameter(str(exc)) if isinstance(exc, ValueError) else None


class ReplicationServicer(replication_pb2_grpc.ReplicationServiceServicer):
    def __init__(self, manager: JobManager, imports: ImportRunner | None = None) -> None:
        self.m = manager
        self._imports = imports

    @property
    def imports(self) -> ImportRunner:
        if self._imports is None:
            raise ImgapiError("ServiceUnavailableError", "remote imports are not enabled in this service")
        return self._imports

    def _job(self, job_id: str) -> replication_pb2.Job:
        job = self.m.store.get_job(job_id, details=True)
        if job is None:
            raise not_found(f"replication job {job_id} not found")
        return job_message(job, self.m.live(job_id))

    def CreateJob(
        self, request: replication_pb2.CreateJobRequest, context: grpc.ServicerContext
    ) -> replication_pb2.Job:
        return self._job(self.m.create(spec_from_message(request.spec)))

    def ListJobs(
        self, request: replication_pb2.ListJobsRequest, context: grpc.ServicerContext
    ) -> replication_pb2.ListJobsResponse:
        return replication_pb2.ListJobsResponse(jobs=[self._job(j) for j in self.m.store.job_ids()])

    def GetJob(
        self, request: replication_pb2.GetJobRequest, context: grpc.ServicerContext
    ) -> replication_pb2.Job:
        return self._job(request.id)

    def PauseJob(
        self, request: replication_pb2.PauseJobRequest, context: grpc.ServicerContext
    ) -> replication_pb2.Job:
        if not self.m.pause(request.id, resume=request.resume):
            raise not_found(f"replication job {request.id} not found")
        return self._job(request.id)

    def DeleteJob(
        self, request: replication_pb2.DeleteJobRequest, context: grpc.ServicerContext
    ) -> replication_pb2.DeleteJobResponse:
        return replication_pb2.DeleteJobResponse(existed=self.m.delete(request.id))

    def ImportImage(
        self, request: replication_pb2.ImportImageRequest, context: grpc.ServicerContext
    ) -> replication_pb2.ImportImageResponse:
        return self.imports.import_image(request)

    def ImportManifest(
        self, request: replication_pb2.ImportManifestRequest, context: grpc.ServicerContext
    ) -> replication_pb2.ImportManifestResponse:
        return self.imports.import_manifest(request)

    def FetchImageFile(
        self, request: replication_pb2.FetchImageFileRequest, context: grpc.ServicerContext
    ) -> replication_pb2.FetchImageFileResponse:
        return self.imports.fetch_image_file(request)

    def GetImportJob(
        self, request: replication_pb2.GetImportJobRequest, context: grpc.ServicerContext
    ) -> replication_pb2.ImportJob:
        return self.imports.get_job(request.uuid)

    def ListImportJobs(
        self, request: replication_pb2.ListImportJobsRequest, context: grpc.ServicerContext
    ) -> replication_pb2.ListImportJobsResponse:
        return self.imports.list_jobs(request)
