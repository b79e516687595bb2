"""Remote sources the gateway still reads itself, and AdminImportImage from a source.

* AdminImportImage from a ``source``: forwarded to the replication service (``ImportManifest``),
  which reads the manifest from ``<source>/images/<uuid>`` and imports it.
* AddImageFile from a ``source``: the file from ``<source>/images/<uuid>/file`` into a blob.
* AddImageFileFromUrl: one HTTPS GET (no redirects) streamed into the blob service.

The two file fetches stay here until the blob upload has one client that the replication service
can share (they stream through :mod:`gateway.uploads`); they go through :mod:`imgapi_common.fetch`
(SSRF rules + the operator allow-list), as the replication service's fetches do.
"""

from __future__ import annotations

from urllib.parse import quote

import grpc
from imgapi.v1 import catalog_pb2, replication_pb2
from starlette.responses import Response

from gateway.context import RequestContext
from gateway.images import operator_only
from gateway.responses import image_response
from gateway.routes_jobs import fetching_rpc, replication_stub
from gateway.settings import GatewaySettings
from gateway.uploads import KIND_FILE, CallScope, EndChecks, FileMeta, prepare, store_file_from
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter
from imgapi_common.fetch import FetchError, FetchTooLarge, SafeFetcher
from imgapi_common.grpc_errors import from_rpc_error
from imgapi_common.remote_imgapi import (
    MANIFEST_LIMIT,
    Remote,
    RemoteHttpError,
    fetch_manifest,
    json_or_none,
    source_url,
)

# --- shared checks ---------------------------------------------------------------------------------


def require_operator(ctx: RequestContext) -> None:
    if ctx.account is not None:
        raise operator_only()


def wants_skip_owner_check(ctx: RequestContext) -> bool:
    """``skip_owner_check``: ``true``/``false``; empty reads as absent, as AdminImportImage's catalog
    check does (the catalog's request cannot tell the two apart)."""
    if ctx.query.empty("skip_owner_check"):
        return False
    return ctx.query.boolean("skip_owner_check") is True


# --- operations ---------------------------------------------------------------------------------------


async def add_file_from_source(
    settings: GatewaySettings, scope: CallScope, uuid: str, source: str, storage: str = ""
) -> catalog_pb2.ImageResponse:
    """AddImageFile from a source: pre-checks, remote manifest, remote file streamed into a blob, attach."""
    prep = await prepare(scope, uuid, KIND_FILE, compression="none", storage=storage)
    remote = Remote(settings.remote(), source)
    manifest = await fetch_manifest(remote, uuid)
    files = manifest.get("files")
    f0 = files[0] if isinstance(files, list) and files and isinstance(files[0], dict) else {}
    size = f0.get("size")
    sha1 = f0.get("sha1")
    dataset_guid = f0.get("dataset_guid")
    checks = EndChecks(
        "Download",
        prep.max_size,
        expected_length=size if isinstance(size, int) and size else None,
        length_label="remote image file size",
        sha1=sha1 if isinstance(sha1, str) else None,
        sha1_label="remote image file sha1",
    )
    meta = FileMeta(
        str(f0.get("compression") or "none"),
        prep.stor,
        dataset_guid if isinstance(dataset_guid, str) else None,
    )
    url = source_url(source, f"images/{quote(uuid)}/file")

    def stream_error(e: BaseException) -> ImgapiError:
        if isinstance(e, FetchTooLarge):
            return ImgapiError("Download", f"image file exceeds the maximum size, {prep.max_size} bytes")
        return ImgapiError(
            "RemoteSourceError", f"Unable to get stream for image file {uuid}. Error from remote: {e}"
        )

    try:
        async with remote.file_fetcher.open(url, headers={"Accept-Version": "*"}) as r:
            if r.status_code != 200:
                detail = RemoteHttpError(r.status_code, json_or_none(await r.read(MANIFEST_LIMIT))).detail
                raise ImgapiError(
                    "RemoteSourceError",
                    f"Unable to get stream for image file {uuid}. Error from remote: {detail}",
                )
            return await store_file_from(
                scope,
                uuid,
                r.iter_bytes(),
                max_size=prep.max_size,
                checks=checks,
                meta=meta,
                too_big_code="Download",
                on_source_error=stream_error,
            )
    except FetchError as e:
        raise stream_error(e) from None


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
    res = await add_file_from_source(
        ctx.settings, CallScope.of(ctx), ctx.uuid, ctx.query.get("source") or "", ctx.query.raw("storage")
    )
    return image_response(res.image.view_json, res.image.etag)


async def add_image_file_from_url(ctx: RequestContext) -> Response:
    """``POST /images/:uuid/file/from-url`` (AddImageFileFromUrl).

    Chain: load -> owner -> body -> ImageFilesImmutable -> compression -> file_url -> storage; the
    catalog's PrepareImageUpload runs load..storage at once, so errors are re-ordered here.
    """
    scope = CallScope.of(ctx)
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
    try:
        prep = await prepare(
            scope, ctx.uuid, KIND_FILE, compression=compression, storage=ctx.query.raw("storage")
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
    if body_error is not None:
        raise body_error
    if url_error is not None:
        raise url_error
    assert isinstance(file_url, str)
    settings = ctx.settings
    fetcher = SafeFetcher(
        settings.remote().policy(https_only=True, max_size=prep.max_size + 1, read_timeout=300.0)
    )
    checks = EndChecks("Download", prep.max_size, sha1=ctx.query.get("sha1"))
    meta = FileMeta(compression, prep.stor, ctx.query.get("dataset_guid"))

    def stream_error(e: BaseException) -> ImgapiError:
        if isinstance(e, FetchTooLarge):
            return ImgapiError("Upload", f"image file exceeds the maximum size, {prep.max_size} bytes")
        return ImgapiError("Download", f"Error getting image: {e}")

    try:
        async with fetcher.open(file_url, follow_redirects=False) as r:
            if r.status_code != 200:
                raise ImgapiError("Download", f"HTTP {r.status_code} error attempting to download image")
            res = await store_file_from(
                scope,
                ctx.uuid,
                r.iter_bytes(),
                max_size=prep.max_size,
                checks=checks,
                meta=meta,
                on_source_error=stream_error,
            )
    except FetchError as e:
        raise stream_error(e) from None
    return image_response(res.image.view_json, res.image.etag)
