"""REST requests the replication service answers from a remote source, forwarded after the
gateway's own checks:

* AdminImportImage from a ``source`` (``ImportManifest``): the manifest read from
  ``<source>/images/<uuid>`` is imported.
* AddImageFile from a ``source`` and AddImageFileFromUrl (``FetchImageFile``): the file fetched
  from ``<source>/images/<uuid>/file`` or one HTTPS URL into a verified blob, attached.
"""

from __future__ import annotations

import grpc
from imgapi.v1 import replication_pb2
from starlette.responses import Response

from gateway.context import RequestContext
from gateway.http.responses import image_response
from gateway.routes.images import operator_only
from gateway.routes.upload_scope import CallScope
from gateway.routes.workflow_jobs import fetching_rpc, replication_stub
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter
from imgapi_common.grpc_errors import from_rpc_error
from imgapi_common.image_uploads import KIND_FILE, prepare

# --- shared checks and forwarding ------------------------------------------------------------------


def require_operator(ctx: RequestContext) -> None:
    if ctx.account is not None:
        raise operator_only()


def wants_skip_owner_check(ctx: RequestContext) -> bool:
    """``skip_owner_check``: ``true``/``false`` (anything else is a 422); empty reads as absent."""
    if ctx.query.empty("skip_owner_check"):
        return False
    return ctx.query.boolean("skip_owner_check") is True


async def fetch_image_file(ctx: RequestContext, req: replication_pb2.FetchImageFileRequest) -> Response:
    req.caller.CopyFrom(ctx.caller())
    req.view.CopyFrom(ctx.view)
    req.uuid = ctx.uuid
    req.storage = ctx.query.raw("storage")
    res: replication_pb2.FetchImageFileResponse = await replication_stub(ctx).FetchImageFile(
        req, **fetching_rpc(ctx)
    )
    return image_response(res.image.view_json, res.image.etag)


# --- REST handlers -----------------------------------------------------------------------------------


async def import_from_source(ctx: RequestContext) -> Response:
    """``POST /images/:uuid?action=import&source=<url>`` (AdminImportImage from a source): the replication service reads the
    source's manifest and imports it."""
    await ctx.check_channel(write=True)
    require_operator(ctx)
    skip = wants_skip_owner_check(ctx)
    res: replication_pb2.ImportManifestResponse = await replication_stub(ctx).ImportManifest(
        replication_pb2.ImportManifestRequest(
            caller=ctx.caller(),
            view=ctx.view,
            uuid=ctx.uuid,
            source=ctx.query.get("source") or "",
            skip_owner_check=skip,
        ),
        **fetching_rpc(ctx),
    )
    return image_response(res.image.view_json, res.image.etag)


async def add_image_file_from_source(ctx: RequestContext) -> Response:
    """``PUT /images/:uuid/file?source=<url>`` (AddImageFile from a source); the request body is ignored."""
    return await fetch_image_file(
        ctx, replication_pb2.FetchImageFileRequest(source=ctx.query.get("source") or "")
    )


async def add_image_file_from_url(ctx: RequestContext) -> Response:
    """``POST /images/:uuid/file/from-url`` (AddImageFileFromUrl).

    Chain: load -> owner -> body -> ImageFilesImmutable -> compression -> file_url -> storage; the
    catalog's PrepareImageUpload runs load..storage at once. A valid body is forwarded (the
    replication service's PrepareImageUpload errors are then in order); with an invalid one the
    catalog's checks are asked here, to answer whichever error comes first.
    """
    body_error: ImgapiError | None = None
    try:
        body = await ctx.read_json_body()
    except ImgapiError as e:
        body_error = e
        body = None
    url_error: ImgapiError | None = None
    file_url = body.value.get("file_url") if body is not None and isinstance(body.value, dict) else None
    if not isinstance(file_url, str) or not file_url:
        url_error = invalid_parameter(
            'missing "file_url" field from request body', [FieldError("file_url", "Missing")]
        )
    elif not file_url.startswith("https:"):
        url_error = invalid_parameter(
            "Only URLs using the https: scheme are supported", [FieldError("file_url", "Invalid")]
        )
    compression = ctx.query.raw("compression")
    if body_error is None and url_error is None:
        assert isinstance(file_url, str)
        url = replication_pb2.FileUrl(file_url=file_url, compression=compression)
        sha1 = ctx.query.get("sha1")
        if sha1 is not None:
            url.sha1 = sha1
        dataset_guid = ctx.query.get("dataset_guid")
        if dataset_guid is not None:
            url.dataset_guid = dataset_guid
        return await fetch_image_file(ctx, replication_pb2.FetchImageFileRequest(url=url))
    try:
        await prepare(
            CallScope.of(ctx), ctx.uuid, KIND_FILE, compression=compression, storage=ctx.query.raw("storage")
        )
    except grpc.RpcError as e:
        err = from_rpc_error(e)
        fields = {fe.field for fe in err.errors}
        if err.code in ("ResourceNotFound", "NotImageOwner") or fields & {"account", "channel"}:
            raise err from None
        if body_error is not None:
            raise body_error from None
        if url_error is not None and "storage" in fields:
            raise url_error from None
        raise err from None
    raise body_error or url_error or AssertionError("an invalid body has an error")
