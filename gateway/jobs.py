"""Emulated Workflow API jobs over REST (endpoints.md §5): ``GET /jobs/:uuid`` and ListImageJobs data.

The job store and runner are in :mod:`gateway.job_registry`; the app holds one (``AppState.jobs``).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.responses import json_response
from imgapi_common.errors import ImgapiError


def workflow_url(ctx: RequestContext) -> str:
    """``workflow-api`` header: the configured external URL, else scheme://host of this request."""
    configured = ctx.settings.workflow_url
    if configured:
        return configured.rstrip("/")
    req = ctx.request
    host = req.headers.get("host") or f"{req.url.hostname}:{req.url.port}"
    return f"{req.url.scheme}://{host}"


# --- handlers -------------------------------------------------------------------------------------


async def get_job(ctx: RequestContext) -> Response:
    """``GET /jobs/:job_uuid`` (emulated WFAPI)."""
    job_uuid = ctx.params.get("job_uuid", "")
    job = ctx.app.jobs.get(job_uuid)
    if job is None:
        raise ImgapiError("ResourceNotFound", f"job {job_uuid} not found")
    return json_response(job.as_json())


async def list_image_jobs(
    ctx: RequestContext, image_uuid: str, task: str | None, execution: str | None
) -> list[dict[str, Any]]:
    """ListImageJobs data (§2.25): the image's jobs filtered by ``task`` / ``execution``."""
    jobs = ctx.app.jobs.list_for_image(image_uuid, task, execution)
    return [j.as_json() for j in sorted(jobs, key=lambda j: j.created_at)]
