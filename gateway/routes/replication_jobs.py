"""Replication jobs through REST (an addition to the IMGAPI route table; docs/replication.md).

Mounted only with the ``replication_target`` setting (and ``replication_routes``, on by default); every route is operator-only (``account`` ->
403 ``OperatorOnly``; strict auth with ``auth_type=signature``) and calls the replication service's
gRPC status API (replication.proto), whose IMGAPI errors are answered as they are:

* ``GET /replication/jobs`` -> ``[job, ...]``
* ``POST /replication/jobs`` (JSON body: a job spec) -> 201 ``job``
* ``GET /replication/jobs/:job_id`` -> ``job``
* ``POST /replication/jobs/:job_id?action=pause|resume`` -> ``job``
* ``DELETE /replication/jobs/:job_id`` -> 204 (404 ``ResourceNotFound`` when unknown)

A job object (:mod:`imgapi_common.replication_jobs`, shared with the CLI) mirrors replication.proto's ``Job`` with snake_case keys and every field present: ``id``,
``spec`` (``name``, ``source_kind`` ``grpc``/``rest``, ``source_catalog``, ``source_blob``,
``source_url``, ``filters``, ``propagate_deletes``, ``concurrency``, ``bandwidth_limit``,
``poll_seconds``), ``state``, ``cursor``, ``source_head``, ``lag``, ``bytes_copied``, ``images_copied``,
``errors``, ``last_error``, ``conflicts``, ``active`` (images in progress or failed), ``synced``,
``created_at``, ``updated_at``.
"""

from __future__ import annotations

from typing import Any

from imgapi.v1 import replication_pb2, replication_pb2_grpc
from starlette.responses import Response

from gateway.context import RequestContext
from gateway.http.responses import empty_response, json_response
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter
from imgapi_common.replication_jobs import FILTER_KEYS, job_json

_KINDS = {"grpc": replication_pb2.JobSpec.SOURCE_GRPC, "rest": replication_pb2.JobSpec.SOURCE_REST}
_STRING_KEYS = ("name", "source_catalog", "source_blob", "source_url")
_SPEC_KEYS = frozenset(
    (
        *_STRING_KEYS,
        "source_kind",
        "filters",
        "propagate_deletes",
        "concurrency",
        "bandwidth_limit",
        "poll_seconds",
    )
)


def _stub(ctx: RequestContext) -> replication_pb2_grpc.ReplicationServiceAsyncStub:
    if ctx.account is not None:
        raise ImgapiError("OperatorOnly", "this endpoint may only be called by an operator")
    stub = ctx.clients.replication
    if stub is None:  # the routes are only mounted with replication_target
        raise ImgapiError("ResourceNotFound", f"{ctx.raw_path} does not exist")
    return stub


# --- request bodies ----------------------------------------------------------------------------------


def _bad(field: str, message: str) -> ImgapiError:
    return invalid_parameter(message, [FieldError(field, "Invalid")])


def spec_from_body(body: Any) -> replication_pb2.JobSpec:
    """The job spec of a ``POST /replication/jobs`` body (types checked here, meaning by the
    replication service). ``source_kind`` defaults to ``rest`` when only ``source_url`` is given."""
    if not isinstance(body, dict):
        raise invalid_parameter("the request body must be a JSON object (a replication job spec)")
    unknown = sorted(set(body) - _SPEC_KEYS)
    if unknown:
        raise invalid_parameter(
            f"unknown replication job fields: {', '.join(unknown)}",
            [FieldError(k, "Invalid") for k in unknown],
        )
    spec = replication_pb2.JobSpec()
    for key in _STRING_KEYS:
        v = body.get(key, "")
        if not isinstance(v, str):
            raise _bad(key, f'"{key}" must be a string')
        setattr(spec, key, v)
    kind = body.get("source_kind", "rest" if spec.source_url and not spec.source_catalog else "grpc")
    if kind not in _KINDS:
        raise _bad("source_kind", '"source_kind" must be "grpc" or "rest"')
    spec.source_kind = _KINDS[kind]
    deletes = body.get("propagate_deletes", False)
    if not isinstance(deletes, bool):
        raise _bad("propagate_deletes", '"propagate_deletes" must be a boolean')
    spec.propagate_deletes = deletes
    for key, top in (("concurrency", 1 << 31), ("bandwidth_limit", 1 << 63)):
        v = body.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < top:
            raise _bad(key, f'"{key}" must be a non-negative integer')
        setattr(spec, key, v)
    poll = body.get("poll_seconds", 0)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or poll < 0:
        raise _bad("poll_seconds", '"poll_seconds" must be a non-negative number')
    spec.poll_seconds = float(poll)
    filters = body.get("filters", {})
    if not isinstance(filters, dict):
        raise _bad("filters", '"filters" must be an object')
    for key, v in filters.items():
        if key == "tags":
            if not isinstance(v, dict) or not all(isinstance(t, str) for t in v.values()):
                raise _bad("filters.tags", '"filters.tags" must be an object of strings')
            spec.filters.tags.update(v)
        elif key == "public" and isinstance(v, bool):
            spec.filters.public = "true" if v else "false"
        elif key in FILTER_KEYS and isinstance(v, str):
            setattr(spec.filters, key, v)
        else:
            raise _bad(f"filters.{key}", f'invalid replication filter "{key}"')
    return spec


# --- handlers ------------------------------------------------------------------------------------------


async def list_jobs(ctx: RequestContext) -> Response:
    stub = _stub(ctx)
    resp = await stub.ListJobs(replication_pb2.ListJobsRequest(), **ctx.rpc)
    return json_response([job_json(j) for j in resp.jobs])


async def create_job(ctx: RequestContext) -> Response:
    stub = _stub(ctx)
    if not ctx.body.present:
        raise invalid_parameter("a JSON body (the replication job spec) is required")
    spec = spec_from_body(ctx.body.value)
    job = await stub.CreateJob(replication_pb2.CreateJobRequest(spec=spec), **ctx.rpc)
    return json_response(job_json(job), status=201)


async def get_job(ctx: RequestContext) -> Response:
    stub = _stub(ctx)
    job = await stub.GetJob(replication_pb2.GetJobRequest(id=ctx.params["job_id"]), **ctx.rpc)
    return json_response(job_json(job))


async def job_action(ctx: RequestContext) -> Response:
    """``?action=pause`` stops the job's work (its progress is kept); ``?action=resume`` restarts it."""
    stub = _stub(ctx)
    action = ctx.query.get("action")
    if action is None:
        raise ImgapiError("MissingParameter", '"action" is required')
    if action not in ("pause", "resume"):
        raise ImgapiError("InvalidArgument", f'"{action}" is not a valid action')
    job = await stub.PauseJob(
        replication_pb2.PauseJobRequest(id=ctx.params["job_id"], resume=action == "resume"), **ctx.rpc
    )
    return json_response(job_json(job))


async def delete_job(ctx: RequestContext) -> Response:
    """Stops the job and forgets its state (the images it replicated stay)."""
    stub = _stub(ctx)
    job_id = ctx.params["job_id"]
    resp = await stub.DeleteJob(replication_pb2.DeleteJobRequest(id=job_id), **ctx.rpc)
    if not resp.existed:
        raise ImgapiError("ResourceNotFound", f"replication job {job_id} not found")
    return empty_response(204)
