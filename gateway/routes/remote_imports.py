"""AdminImportRemoteImage and ImportFromDatacenter: the REST request is checked here, the import
runs as a job in the replication service (``ImportImage``), the answer names the job.

The replication service checks the source (the image must not exist here, the remote manifest, its
missing origins; for a datacenter, the datacenter's name and the origin-ownership rules) before it
starts the job; its refusals are IMGAPI errors answered as they are, and a datacenter's own HTTP
error answer is passed on unchanged.
"""

from __future__ import annotations

import json

from imgapi.v1 import common_pb2, replication_pb2
from starlette.responses import Response

from gateway.context import RequestContext, is_uuid
from gateway.http.responses import json_response
from gateway.routes.remote_files import require_operator, wants_skip_owner_check
from gateway.routes.workflow_jobs import fetching_rpc, replication_stub, workflow_url
from imgapi_common.errors import FieldError, validation_failed


def operator_caller(ctx: RequestContext) -> common_pb2.CallerContext:
    """The caller of the job's catalog calls: the request's operator scope (channel kept)."""
    c = ctx.caller()
    c.account = ""
    c.account_present = False
    return c


async def _start(ctx: RequestContext, request: replication_pb2.ImportImageRequest) -> Response:
    stub = replication_stub(ctx)
    res: replication_pb2.ImportImageResponse = await stub.ImportImage(request, **fetching_rpc(ctx))
    if res.WhichOneof("answer") == "remote_answer":
        return json_response(json.loads(res.remote_answer.body_json), status=res.remote_answer.status)
    return json_response(
        {"image_uuid": request.uuid, "job_uuid": res.job.uuid}, headers={"workflow-api": workflow_url(ctx)}
    )


async def import_remote(ctx: RequestContext) -> Response:
    """``POST /images/:uuid?action=import-remote&source=<url>`` (AdminImportRemoteImage)."""
    await ctx.check_channel(write=True)
    source = ctx.query.get("source")
    if source is None:
        raise validation_failed("missing source parameter", [FieldError("source", "MissingParameter")])
    require_operator(ctx)
    skip = wants_skip_owner_check(ctx)
    return await _start(
        ctx,
        replication_pb2.ImportImageRequest(
            caller=operator_caller(ctx), uuid=ctx.uuid, source=source, skip_owner_check=skip
        ),
    )


async def import_from_datacenter(ctx: RequestContext) -> Response:
    """``POST /images/:uuid?action=import-from-datacenter&datacenter=<dc>&account=<uuid>`` (ImportFromDatacenter)."""
    await ctx.check_channel(write=True)
    account = ctx.query.get("account")
    if account is None or not is_uuid(account):
        raise validation_failed(
            f'invalid image "account" (not a UUID): {account or ""}', [FieldError("account", "Invalid")]
        )
    dc = ctx.query.get("datacenter")
    if dc is None:
        raise validation_failed(
            "missing datacenter parameter", [FieldError("datacenter", "MissingParameter")]
        )
    return await _start(
        ctx,
        replication_pb2.ImportImageRequest(
            caller=operator_caller(ctx), uuid=ctx.uuid, datacenter=dc, account=account
        ),
    )
