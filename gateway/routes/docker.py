"""AdminImportDockerImage (``POST /images?action=import-docker-image``) and AdminPushDockerImage
(``POST /images/:uuid/push``) through the replication service's DockerImport streams: a request it refuses is an ordinary JSON error; once it has started,
the body is its progress, one compact JSON object per line (``\\r\\n``), and failures are the last
line (the status stays 200)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio
from imgapi.v1 import common_pb2, docker_pb2, docker_pb2_grpc
from starlette.responses import Response, StreamingResponse

from gateway.context import RequestContext
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import from_rpc_error

Call = aio.UnaryStreamCall[Any, docker_pb2.DockerStreamEvent]


def _request(ctx: RequestContext) -> docker_pb2.ImportDockerImageRequest:
    q = ctx.query
    req = docker_pb2.ImportDockerImageRequest(
        caller=common_pb2.CallerContext(channel=q.raw("channel"), request_id=ctx.request_id),
        repo=q.get("repo") or "",
        tag=q.get("tag") or "",
        digest=q.get("digest") or "",
    )
    if q.present("public"):
        req.public = q.raw("public")
    for header, field in (("x-registry-auth", "registry_auth"), ("x-registry-config", "registry_config")):
        value = ctx.request.headers.get(header)
        if value is not None:
            setattr(req, field, value)
    return req


async def import_docker_image(ctx: RequestContext, stub: docker_pb2_grpc.DockerImportAsyncStub) -> Response:
    """Start the import; answer its refusal as an error, else stream its progress. An import that
    fails before its first progress line (registry login, manifest, platform choice) answers that
    single error line without a ``Content-Type``, as the reference does."""
    call = stub.ImportDockerImage(_request(ctx), metadata=ctx.metadata)
    await _start(call)
    try:
        first = await call.read()
    except grpc.RpcError as e:
        return StreamingResponse(_one(_failure(e)), media_type=None)
    first_line = first.line_json if isinstance(first, docker_pb2.DockerStreamEvent) else ""
    failed_early = bool(first_line) and json.loads(first_line).get("type") == "error"
    return StreamingResponse(
        _lines(call, first_line), media_type=None if failed_early else "application/json"
    )


def _failure(e: grpc.RpcError) -> bytes:
    """The stream's last line for the replication service going away mid-import."""
    err = from_rpc_error(e)
    line = {"type": "error", "error": {"code": err.code, "message": err.message}}
    return json.dumps(line, separators=(",", ":")).encode() + b"\r\n"


async def _one(line: bytes) -> AsyncIterator[bytes]:
    yield line


async def push_docker_image(ctx: RequestContext, stub: docker_pb2_grpc.DockerImportAsyncStub) -> Response:
    """AdminPushDockerImage after the gateway's checks (image, owner, docker type): the replication
    service checks the rest and pushes; the stream has no ``Content-Type`` (as the reference's)."""
    req = docker_pb2.PushDockerImageRequest(
        caller=common_pb2.CallerContext(request_id=ctx.request_id), uuid=ctx.uuid
    )
    if ctx.query.present("repoAndTag"):
        req.repo_and_tag = ctx.query.raw("repoAndTag")
    if ctx.body.present:
        req.body_json = ctx.body.text
    auth = ctx.request.headers.get("x-registry-auth")
    if auth is not None:
        req.registry_auth = auth
    return await _stream(stub.PushDockerImage(req, metadata=ctx.metadata), None)


async def _start(call: Call) -> None:
    """Wait for the service to accept the request (its refusal is raised as the REST error)."""
    try:
        first = await call.read()
    except grpc.RpcError as e:
        raise from_rpc_error(e) from None
    if first is aio.EOF:  # type: ignore[attr-defined]  # pragma: no cover - it always starts
        raise ImgapiError("InternalError", "the docker registry exchange ended before it started")


async def _stream(call: Call, media_type: str | None) -> Response:
    await _start(call)
    return StreamingResponse(_lines(call), media_type=media_type)


async def _lines(call: Call, first_line: str = "") -> AsyncIterator[bytes]:
    if first_line:
        yield first_line.encode() + b"\r\n"
    try:
        while True:
            event = await call.read()
            if event is aio.EOF:  # type: ignore[attr-defined]
                return
            assert isinstance(event, docker_pb2.DockerStreamEvent)
            if event.HasField("line_json"):
                yield event.line_json.encode() + b"\r\n"
    except grpc.RpcError as e:
        yield _failure(e)
    finally:
        call.cancel()  # a caller gone away: the import itself goes on in the replication service
