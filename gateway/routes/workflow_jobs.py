"""Workflow API jobs over REST: ``GET /jobs/:uuid`` and ListImageJobs data.

The jobs are the replication service's import jobs (``GetImportJob`` / ``ListImportJobs``); this
module renders them in WFAPI's shape: a finished job has a non-empty ``chain_results`` whose last
entry has ``error: ""`` on success and an object with a ``message`` on failure.
"""

from __future__ import annotations

from typing import Any

from imgapi.v1 import replication_pb2, replication_pb2_grpc
from starlette.responses import Response

from gateway.context import RequestContext
from gateway.http.responses import json_response
from imgapi_common.errors import ImgapiError


def workflow_url(ctx: RequestContext) -> str:
    """``workflow-api`` header: the configured external URL, else scheme://host of this request."""
    configured = ctx.settings.workflow_url
    if configured:
        return configured.rstrip("/")
    req = ctx.request
    host = req.headers.get("host") or f"{req.url.hostname}:{req.url.port}"
    return f"{req.url.scheme}://{host}"


def replication_stub(ctx: RequestContext) -> replication_pb2_grpc.ReplicationServiceAsyncStub:
    """The replication service, which runs remote imports (503 when none is configured)."""
    stub = ctx.clients.replication
    if stub is None:
        raise ImgapiError(
            "ServiceUnavailableError",
            "remote imports need the replication service (IMGAPI_GATEWAY_REPLICATION_TARGET)",
        )
    return stub


def fetching_rpc(ctx: RequestContext) -> dict[str, Any]:
    """Call options of a replication RPC that reads a remote before it answers: the remote's own
    timeouts (``remote_timeout_seconds``) bound it, not the deadline of ordinary calls."""
    return {"timeout": ctx.clients.transfer_timeout, "metadata": ctx.metadata}


# --- job objects -------------------------------------------------------------------------------------


def _step(s: replication_pb2.StepResult) -> dict[str, Any]:
    error: Any = ""
    if s.HasField("error"):
        e = s.error
        error = (
            {"name": e.name, "code": e.code, "message": e.message}
            if e.HasField("code")
            else {
                "name": e.name,
                "message": e.message,
            }
        )
    return {
        "name": s.name,
        "result": s.result,
        "error": error,
        "started_at": s.started_at,
        "finished_at": s.finished_at,
    }


def job_json(j: replication_pb2.ImportJob) -> dict[str, Any]:
    p = j.params
    return {
        "uuid": j.uuid,
        "name": j.name,
        "task": j.task,
        "execution": j.execution,
        "params": {
            "task": p.task,
            "image_uuid": p.image_uuid,
            "source": p.source,
            "origins": list(p.origins),
            "skip_owner_check": p.skip_owner_check,
            "target": p.target,
        },
        "chain_results": [_step(s) for s in j.chain_results],
        "onerror_results": [_step(s) for s in j.onerror_results],
        "created_at": j.created_at,
    }


# --- handlers -------------------------------------------------------------------------------------


async def get_job(ctx: RequestContext) -> Response:
    """``GET /jobs/:job_uuid`` (emulated WFAPI)."""
    job_uuid = ctx.params.get("job_uuid", "")
    stub = ctx.clients.replication
    if stub is None:
        raise ImgapiError("ResourceNotFound", f"job {job_uuid} not found")
    job = await stub.GetImportJob(replication_pb2.GetImportJobRequest(uuid=job_uuid), **ctx.rpc)
    return json_response(job_json(job))


async def list_image_jobs(
    ctx: RequestContext, image_uuid: str, task: str | None, execution: str | None
) -> list[dict[str, Any]]:
    """ListImageJobs data: the image's jobs filtered by ``task`` / ``execution``."""
    stub = ctx.clients.replication
    if stub is None:
        return []
    req = replication_pb2.ListImportJobsRequest(image_uuid=image_uuid, task=task, execution=execution)
    res = await stub.ListImportJobs(req, **ctx.rpc)
    return [job_json(j) for j in res.jobs]
