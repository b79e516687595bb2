"""Image files and icons over REST (AddImageFile, GetImageFile, AddImageIcon, GetImageIcon, DeleteImageIcon), streamed through the blob service.

Uploads go through :mod:`gateway.routes.upload_scope` (the catalog's pre-body checks, the body into a blob
upload, the end-of-body checks, the attach). Downloads stream the blob back through
:mod:`blob_client` (views of the received messages, no copy), with ``Content-MD5`` and,
beyond the original, single-range ``Range`` requests (206 / 416).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

from imgapi.v1 import catalog_pb2, common_pb2, image_pb2
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from blob_client import BlobError, BlobReader, UploadSpec
from gateway.adapters.orphaned_blobs import delete_orphans
from gateway.context import RequestContext
from gateway.http.conditional import http_date_of, if_range_matches, validators
from gateway.http.ranges import ByteRange, MalformedRange, RangeNotSatisfiable, parse_range
from gateway.http.responses import empty_response, image_response, json_response
from gateway.routes import remote_files
from gateway.routes.upload_scope import CallScope
from imgapi_common.errors import ImgapiError
from imgapi_common.image_uploads import (
    KIND_FILE,
    KIND_ICON,
    EndChecks,
    FileMeta,
    blob_error,
    prepare,
    store_blob,
    store_file_from,
)

log = logging.getLogger("gateway.routes.files")


def _content_length(ctx: RequestContext) -> tuple[str, int | None]:
    raw = ctx.request.headers.get("content-length", "")
    return raw, int(raw) if raw.isdigit() else None


async def request_body(ctx: RequestContext) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that sends nothing for the upload idle time
    (``upload_idle_seconds``) is cut with a 408 instead of holding the upload forever."""
    idle = ctx.settings.upload_idle_seconds
    pieces = ctx.request.stream()
    while True:
        try:
            async with asyncio.timeout(idle):
                piece = await anext(pieces)
        except StopAsyncIteration:
            return
        except TimeoutError:
            await pieces.aclose()
            log.warning("upload body idle for %.1f s: cut", idle)
            raise ImgapiError(
                "RequestTimeoutError", f"no bytes of the request body arrived for {idle:g} seconds"
            ) from None
        if piece:
            yield piece


# --- AddImageFile --------------------------------------------------------------------------------


async def add_image_file(ctx: RequestContext) -> Response:
    """``PUT /images/:uuid/file`` (AddImageFile); ``?source=`` switches to AddImageFile from a source."""
    if ctx.query.get("source"):
        return await remote_files.add_image_file_from_source(ctx)
    scope = CallScope.of(ctx)
    raw_len, length = _content_length(ctx)
    prep = await prepare(
        scope,
        ctx.uuid,
        KIND_FILE,
        compression=ctx.query.raw("compression"),
        storage=ctx.query.raw("storage"),
        content_length=raw_len,
    )
    checks = EndChecks("Download", prep.max_size, expected_length=length, sha1=ctx.query.get("sha1"))
    meta = FileMeta(ctx.query.raw("compression"), prep.stor, ctx.query.get("dataset_guid"))
    res = await store_file_from(
        scope,
        ctx.uuid,
        request_body(ctx),
        max_size=prep.max_size,
        checks=checks,
        meta=meta,
        declared_length=length,
        on_source_error=_disconnect_error,
    )
    return image_response(res.image.view_json, res.image.etag)


def _disconnect_error(e: BaseException) -> ImgapiError:
    if isinstance(e, ClientDisconnect):
        return ImgapiError("Upload", "client disconnected before the end of the upload")
    if isinstance(e, ImgapiError):
        return e
    return ImgapiError("Upload", f"error reading the request body: {e}")


# --- AddImageIcon / DeleteImageIcon ---------------------------------------------------------------


async def add_image_icon(ctx: RequestContext) -> Response:
    """``PUT /images/:uuid/icon`` (AddImageIcon)."""
    scope = CallScope.of(ctx)
    raw_len, length = _content_length(ctx)
    # Without the header the reference's message interpolates JavaScript's ``undefined``.
    content_type = ctx.request.headers.get("content-type", "undefined")
    prep = await prepare(
        scope,
        ctx.uuid,
        KIND_ICON,
        storage=ctx.query.raw("storage"),
        content_type=content_type,
        content_length=raw_len,
    )
    too_big = ImgapiError("Upload", f"icon size exceeds the maximum, {prep.max_size} bytes")
    checks = EndChecks("Upload", prep.max_size, expected_length=length, sha1=ctx.query.get("sha1"))
    info = await store_blob(
        scope,
        UploadSpec(max_size=prep.max_size, label=f"icon:{ctx.uuid}"),
        request_body(ctx),
        checks,
        too_big=too_big,
        declared_length=length,
        on_source_error=_disconnect_error,
    )
    icon = image_pb2.ImageIcon(
        sha1=info.sha1,
        size=info.size,
        content_type=content_type,
        content_md5=info.content_md5,
        stor=prep.stor or info.stor,
        blob_id=info.blob_id,
    )
    try:
        res: catalog_pb2.ImageResponse = await scope.clients.catalog.AttachImageIcon(
            catalog_pb2.AttachImageIconRequest(
                caller=scope.caller, view=scope.view, uuid=ctx.uuid, icon=icon
            ),
            **scope.rpc,
        )
    except BaseException:
        await delete_orphans(scope, [info.blob_id], strict=False)
        raise
    await delete_orphans(scope, res.orphaned_blob_ids, strict=False)
    return image_response(res.image.view_json, res.image.etag)


async def delete_image_icon(ctx: RequestContext) -> Response:
    """``DELETE /images/:uuid/icon`` (DeleteImageIcon)."""
    scope = CallScope.of(ctx)
    res: catalog_pb2.ImageResponse = await scope.clients.catalog.DetachImageIcon(
        catalog_pb2.DetachImageIconRequest(caller=scope.caller, view=scope.view, uuid=ctx.uuid), **scope.rpc
    )
    await delete_orphans(scope, res.orphaned_blob_ids, strict=False)
    return image_response(res.image.view_json, res.image.etag)


# --- downloads ------------------------------------------------------------------------------------


async def _open_blob(ctx: RequestContext, blob_id: str, offset: int = 0, length: int = 0) -> BlobReader:
    """Start reading the blob and wait for its first bytes, so storage errors still become JSON errors."""
    try:
        return await ctx.clients.blobs.open(blob_id, offset, length, ctx.metadata)
    except BlobError as e:
        raise blob_error(e) from None


async def _load(
    ctx: RequestContext, subject: common_pb2.Preconditions.Subject.ValueType
) -> catalog_pb2.ImageResponse:
    res: catalog_pb2.ImageResponse = await ctx.clients.catalog.GetImage(
        catalog_pb2.GetImageRequest(
            caller=ctx.caller(), view=ctx.view, uuid=ctx.uuid, preconditions=ctx.preconditions(subject)
        ),
        **ctx.rpc,
    )
    return res


def _parse_int(raw: str | None) -> int:
    """JavaScript ``parseInt(x, 10)`` with NaN -> 0."""
    m = re.match(r"^\s*([+-]?\d+)", raw or "")
    return int(m.group(1)) if m else 0


async def get_image_file(ctx: RequestContext) -> Response:
    """``GET /images/:uuid/file`` (GetImageFile) plus single-range ``Range`` support."""
    res = await _load(ctx, common_pb2.Preconditions.SUBJECT_FILE)
    image = res.image
    if not image.files and not res.not_modified:
        raise ImgapiError("ResourceNotFound", f'image "{ctx.uuid}" has no file')
    index = _parse_int(ctx.query.get("index"))
    if not res.not_modified and not 0 <= index < len(image.files):
        raise ImgapiError("ResourceNotFound", f'image "{ctx.uuid}" has no file at index {index}')
    if res.not_modified:
        return _not_modified(image.files[index] if 0 <= index < len(image.files) else None)
    f = image.files[index]
    last_modified = http_date_of(f.mtime)
    headers = {"Etag": f.sha1, "Accept-Ranges": "bytes"}
    if last_modified:
        headers["Last-Modified"] = last_modified
    try:
        rng = _requested_range(ctx, f.size, f.sha1, last_modified)
    except RangeNotSatisfiable as e:
        headers["Content-Range"] = e.content_range
        body = {"code": "RequestedRangeNotSatisfiable", "message": str(e)}
        return json_response(body, status=416, headers=headers)
    if rng is not None:
        reader = await _open_blob(ctx, f.blob_id, rng.first, rng.length)
        headers["Content-Range"] = rng.content_range
        headers["Content-Length"] = str(rng.length)
        return StreamingResponse(
            reader.chunks(), status_code=206, headers=headers, media_type="application/octet-stream"
        )
    reader = await _open_blob(ctx, f.blob_id)
    headers["Content-MD5"] = f.content_md5
    headers["Content-Length"] = str(f.size)
    return StreamingResponse(reader.chunks(), headers=headers, media_type="application/octet-stream")


def _requested_range(ctx: RequestContext, size: int, etag: str, last_modified: str) -> ByteRange | None:
    """The range to serve (206); None serves the whole file (no ``Range``, a malformed one, or an
    ``If-Range`` that does not match). Raises :class:`RangeNotSatisfiable` (416)."""
    header = ctx.request.headers.get("range")
    if not header:
        return None
    if_range = ctx.request.headers.get("if-range")
    try:
        rng = parse_range(header, size)
    except MalformedRange:
        return None
    except RangeNotSatisfiable:
        if if_range_matches(if_range, etag, last_modified):
            raise
        return None
    return rng if if_range_matches(if_range, etag, last_modified) else None


def _not_modified(blob: image_pb2.ImageFile | image_pb2.ImageIcon | None) -> Response:
    """304 with the validators the 200 would carry (``Etag`` = the file/icon SHA-1, ``Last-Modified``)."""
    return empty_response(304, validators(blob.sha1, blob.mtime) if blob is not None else {})


async def get_image_icon(ctx: RequestContext) -> Response:
    """``GET /images/:uuid/icon`` (GetImageIcon)."""
    res = await _load(ctx, common_pb2.Preconditions.SUBJECT_ICON)
    if not res.image.HasField("icon"):  # before the conditional headers, as the reference does
        raise ImgapiError("ResourceNotFound", f'image "{ctx.uuid}" has no icon')
    if res.not_modified:
        return _not_modified(res.image.icon)
    icon = res.image.icon
    reader = await _open_blob(ctx, icon.blob_id)
    headers = {"Content-MD5": icon.content_md5, "Etag": icon.sha1, "Content-Length": str(icon.size)}
    last_modified = http_date_of(icon.mtime)
    if last_modified:
        headers["Last-Modified"] = last_modified
    return StreamingResponse(reader.chunks(), headers=headers, media_type=icon.content_type)


async def add_image_file_from_url(ctx: RequestContext) -> Response:
    """``POST /images/:uuid/file/from-url`` (AddImageFileFromUrl), implemented in gateway.routes.remote_files."""
    return await remote_files.add_image_file_from_url(ctx)
