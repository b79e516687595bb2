"""Image files and icons over REST (endpoints.md §2.9, §2.12-2.15), streamed through the blob service.

Uploads: the catalog runs the pre-body checks (``PrepareImageUpload``), the body streams into a blob
upload in 1 MiB chunks while it arrives (the blob service computes size and digests), the
end-of-body checks run in spec order, then the catalog attaches the verified blob and names the
blobs no image references any more. Downloads stream ``ReadBlob`` back, with ``Content-MD5`` and,
beyond the original, single-range ``Range`` requests (206 / 416).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import grpc
from grpc import aio
from imgapi.v1 import blob_pb2, catalog_pb2, common_pb2, image_pb2
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from blob_service.client import WRITE_CHUNKS
from blob_service.wire import encode_write_chunk
from gateway.clients import Clients
from gateway.context import RequestContext
from gateway.responses import empty_response, image_response, json_response
from imgapi_common.errors import ImgapiError, error_reason, from_rpc_error

log = logging.getLogger("gateway.files")

CHUNK = 1 << 20
KIND_FILE = catalog_pb2.PrepareImageUploadRequest.KIND_FILE
KIND_ICON = catalog_pb2.PrepareImageUploadRequest.KIND_ICON


# --- calling the services outside a request (jobs) or inside one ---------------------------------


@dataclass(frozen=True)
class CallScope:
    """What every catalog/blob call of a file operation needs: stubs, caller, view, metadata."""

    clients: Clients
    caller: common_pb2.CallerContext
    view: common_pb2.ImageView
    metadata: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, ctx: RequestContext) -> CallScope:
        return cls(ctx.clients, ctx.caller(), ctx.view, ctx.metadata)

    @property
    def rpc(self) -> dict[str, Any]:
        return {"timeout": self.clients.timeout, "metadata": self.metadata}

    @property
    def transfer(self) -> dict[str, Any]:
        return {"timeout": self.clients.transfer_timeout, "metadata": self.metadata}


def blob_error(exc: grpc.RpcError, *, too_big: ImgapiError | None = None) -> ImgapiError:
    """A blob-service failure as an IMGAPI error (errors.md: StorageIsDown 503, else 500; a full
    backend 507, all upload streams taken 503)."""
    reason, meta = error_reason(exc)
    if reason == "SizeExceeded" and too_big is not None:
        return too_big
    if reason == "InsufficientStorage":
        return ImgapiError("InsufficientStorage", "insufficient storage: the image store is full")
    if reason == "TooManyUploads":
        return ImgapiError("ServiceUnavailableError", "too many uploads in progress, retry later")
    code = exc.code() if hasattr(exc, "code") else None
    if reason == "StorageIsDown" or code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ImgapiError("StorageIsDown", "storage is unavailable")
    if reason is None:
        return from_rpc_error(exc)
    return ImgapiError("InternalError", f"storage error: {reason} {meta.get('message', '')}".strip())


async def delete_blobs(
    clients: Clients, blob_ids: list[str] | tuple[str, ...], metadata: tuple[tuple[str, str], ...] = ()
) -> None:
    """Best effort: a leftover blob is harmless garbage, never a dangling reference."""
    for blob_id in blob_ids:
        if not blob_id:
            continue
        try:
            await clients.blob.DeleteBlob(
                blob_pb2.DeleteBlobRequest(blob_id=blob_id), timeout=clients.timeout, metadata=metadata
            )
        except grpc.RpcError as e:
            log.warning("could not delete blob %s: %s", blob_id, e)


async def abort_upload(clients: Clients, upload_id: str) -> None:
    try:
        await clients.blob.AbortUpload(
            blob_pb2.AbortUploadRequest(upload_id=upload_id), timeout=clients.timeout
        )
    except grpc.RpcError as e:
        log.debug("abort of upload %s: %s", upload_id, e)


# --- writing bytes into a blob upload ------------------------------------------------------------


#: A partly filled chunk waiting this long is sent anyway when more bytes arrive, so that a slow
#: but live client keeps the blob service's upload stream active (it cuts idle streams).
FLUSH_SECONDS = 5.0


async def rechunk(
    source: AsyncIterator[bytes], size: int = CHUNK, flush_seconds: float = FLUSH_SECONDS
) -> AsyncIterator[memoryview]:
    """Re-cut a byte stream into ``size``-byte pieces (the last may be shorter), copying once.

    The pieces (uvicorn hands over ~64 KiB) are copied into one reused buffer; each yielded view of
    it is valid only until the next piece is requested, so the consumer must copy it right away.
    A partial piece is yielded early once bytes have waited in it for ``flush_seconds``.
    """
    buf = bytearray(size)
    view = memoryview(buf)
    have = 0
    since = time.monotonic()
    async for piece in source:
        data = memoryview(piece)
        while len(data):
            n = min(size - have, len(data))
            view[have : have + n] = data[:n]
            have += n
            data = data[n:]
            if have == size:
                yield view
                have = 0
                since = time.monotonic()
        if have and time.monotonic() - since >= flush_seconds:
            yield view[:have]
            have = 0
            since = time.monotonic()
    if have:
        yield view[:have]


@dataclass
class WriteOutcome:
    """Result of streaming a source into an upload."""

    committed_offset: int
    #: The source failed (client disconnect, remote error) after the bytes before it were kept.
    source_error: BaseException | None = None


async def write_chunks(
    clients: Clients,
    upload_id: str,
    offset: int,
    source: AsyncIterator[bytes],
    *,
    too_big: ImgapiError | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
) -> WriteOutcome:
    """Stream ``source`` (re-chunked to 1 MiB) into an upload starting at ``offset``.

    A failing source ends the gRPC stream normally, so the blob service keeps what it received
    (tus resumes from there); the failure is returned in :attr:`WriteOutcome.source_error`.
    """
    failure: list[BaseException] = []

    async def requests() -> AsyncIterator[bytes]:
        # Encoded by hand: the chunk is copied once from the rechunk buffer into the request.
        first = True
        try:
            async for data in rechunk(source):
                if first:
                    yield encode_write_chunk(data, upload_id=upload_id, offset=offset)
                    first = False
                else:
                    yield encode_write_chunk(data)
        except Exception as e:  # ClientDisconnect, FetchError, ...
            failure.append(e)
        if first:  # nothing to write: still name the upload so the call is well-formed
            yield encode_write_chunk(b"", upload_id=upload_id, offset=offset)

    write = clients.blob_channel.stream_unary(
        WRITE_CHUNKS, request_serializer=None, response_deserializer=blob_pb2.UploadStatus.FromString
    )
    try:
        status = await write(requests(), timeout=clients.transfer_timeout, metadata=metadata)
    except grpc.RpcError as e:
        if failure:
            return WriteOutcome(await current_offset(clients, upload_id, offset), failure[0])
        if e.code() == grpc.StatusCode.CANCELLED:  # the blob service cut a stream that went idle
            raise ImgapiError("RequestTimeoutError", "the upload made no progress and was cut") from None
        raise blob_error(e, too_big=too_big) from None
    return WriteOutcome(status.committed_offset, failure[0] if failure else None)


async def current_offset(clients: Clients, upload_id: str, default: int) -> int:
    try:
        st = await clients.blob.GetUpload(
            blob_pb2.GetUploadRequest(upload_id=upload_id), timeout=clients.timeout
        )
        return int(st.committed_offset)
    except grpc.RpcError:
        return default


async def start_upload(
    clients: Clients,
    *,
    max_size: int,
    label: str,
    expected_size: int = 0,
    metadata: tuple[tuple[str, str], ...] = (),
) -> str:
    try:
        st = await clients.blob.StartUpload(
            blob_pb2.StartUploadRequest(max_size=max_size, label=label, expected_size=expected_size),
            timeout=clients.timeout,
            metadata=metadata,
        )
    except grpc.RpcError as e:
        raise blob_error(e) from None
    return str(st.upload_id)


async def commit_upload(
    clients: Clients, upload_id: str, metadata: tuple[tuple[str, str], ...] = ()
) -> blob_pb2.BlobInfo:
    try:
        return await clients.blob.CommitUpload(
            blob_pb2.CommitUploadRequest(upload_id=upload_id),
            timeout=clients.transfer_timeout,
            metadata=metadata,
        )
    except grpc.RpcError as e:
        raise blob_error(e) from None


# --- end-of-body checks and attachment ------------------------------------------------------------


@dataclass(frozen=True)
class EndChecks:
    """The end-of-body checks of one upload flavour, in spec order."""

    code: str  # "Download" for files, "Upload" for icons
    max_size: int
    #: Length the body must have (Content-Length header / remote manifest size), None = unchecked.
    expected_length: int | None = None
    length_label: str = '"Content-Length" header'
    sha1: str | None = None
    sha1_label: str = '"sha1" hash'

    def before_commit(self, size: int) -> None:
        if size == 0:
            what = "image file" if self.code == "Download" else "icon"
            raise ImgapiError(self.code, f"{what} size is 0 bytes, empty files are not allowed")
        if size > self.max_size:
            raise ImgapiError(self.code, f"upload size, {size}, exceeds the maximum, {self.max_size}")
        if self.expected_length is not None and self.expected_length != size:
            raise ImgapiError(
                self.code,
                f"{self.length_label}, {self.expected_length}, does not match uploaded size, {size}",
            )

    def after_commit(self, info: blob_pb2.BlobInfo) -> None:
        if self.sha1 is not None and self.sha1 != info.digests.sha1:
            raise ImgapiError(
                self.code,
                f"{self.sha1_label}, {self.sha1}, does not match the uploaded file sha1 hash, "
                f"{info.digests.sha1}",
            )


async def verify_and_commit(
    clients: Clients,
    upload_id: str,
    size: int,
    checks: EndChecks,
    metadata: tuple[tuple[str, str], ...] = (),
) -> blob_pb2.BlobInfo:
    """Run the end checks around CommitUpload; nothing is left behind when one fails."""
    try:
        checks.before_commit(size)
    except ImgapiError:
        await abort_upload(clients, upload_id)
        raise
    info = await commit_upload(clients, upload_id, metadata)
    try:
        checks.after_commit(info)
    except ImgapiError:
        await delete_blobs(clients, [info.blob_id])
        raise
    return info


@dataclass(frozen=True)
class FileMeta:
    compression: str
    stor: str
    dataset_guid: str | None = None


async def attach_file(
    scope: CallScope, uuid: str, info: blob_pb2.BlobInfo, meta: FileMeta
) -> catalog_pb2.ImageResponse:
    """AttachImageFile, then drop the blobs nothing references any more."""
    f = image_pb2.ImageFile(
        sha1=info.digests.sha1,
        size=info.size,
        compression=meta.compression,
        stor=meta.stor or info.stor,
        content_md5=info.content_md5,
        blob_id=info.blob_id,
    )
    if meta.dataset_guid is not None:
        f.dataset_guid = meta.dataset_guid
    try:
        res: catalog_pb2.ImageResponse = await scope.clients.catalog.AttachImageFile(
            catalog_pb2.AttachImageFileRequest(caller=scope.caller, view=scope.view, uuid=uuid, file=f),
            **scope.rpc,
        )
    except BaseException:
        await delete_blobs(scope.clients, [info.blob_id], scope.metadata)
        raise
    await delete_blobs(scope.clients, list(res.orphaned_blob_ids), scope.metadata)
    return res


async def prepare(
    scope: CallScope,
    uuid: str,
    kind: catalog_pb2.PrepareImageUploadRequest.Kind.ValueType,
    *,
    compression: str = "",
    storage: str = "",
    content_type: str = "",
    content_length: str = "",
) -> catalog_pb2.PrepareImageUploadResponse:
    res: catalog_pb2.PrepareImageUploadResponse = await scope.clients.catalog.PrepareImageUpload(
        catalog_pb2.PrepareImageUploadRequest(
            caller=scope.caller,
            uuid=uuid,
            kind=kind,
            compression=compression,
            storage=storage,
            content_type=content_type,
            content_length=content_length,
        ),
        **scope.rpc,
    )
    return res


async def store_file_from(
    scope: CallScope,
    uuid: str,
    source: AsyncIterator[bytes],
    *,
    max_size: int,
    checks: EndChecks,
    meta: FileMeta,
    too_big_code: str = "Upload",
    on_source_error: Callable[[BaseException], ImgapiError] | None = None,
) -> catalog_pb2.ImageResponse:
    """Stream ``source`` into a new blob, verify it, attach it as the image file."""
    clients = scope.clients
    upload_id = await start_upload(clients, max_size=max_size, label=f"file:{uuid}", metadata=scope.metadata)
    too_big = ImgapiError(too_big_code, f"file size exceeds the maximum, {max_size} bytes")
    try:
        out = await write_chunks(clients, upload_id, 0, source, too_big=too_big, metadata=scope.metadata)
    except BaseException:
        await abort_upload(clients, upload_id)
        raise
    if out.source_error is not None:
        await abort_upload(clients, upload_id)
        if on_source_error is not None:
            raise on_source_error(out.source_error)
        raise out.source_error
    info = await verify_and_commit(clients, upload_id, out.committed_offset, checks, scope.metadata)
    return await attach_file(scope, uuid, info, meta)


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
    """``PUT /images/:uuid/file`` (§2.9); ``?source=`` switches to §2.10."""
    if ctx.query.get("source"):
        from gateway.remote_import import add_image_file_from_source

        return await add_image_file_from_source(ctx)
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
    """``PUT /images/:uuid/icon`` (§2.13)."""
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
    clients = scope.clients
    upload_id = await start_upload(
        clients, max_size=prep.max_size, label=f"icon:{ctx.uuid}", metadata=scope.metadata
    )
    too_big = ImgapiError("Upload", f"icon size exceeds the maximum, {prep.max_size} bytes")
    try:
        out = await write_chunks(
            clients, upload_id, 0, request_body(ctx), too_big=too_big, metadata=scope.metadata
        )
    except BaseException:
        await abort_upload(clients, upload_id)
        raise
    if out.source_error is not None:
        await abort_upload(clients, upload_id)
        raise _disconnect_error(out.source_error)
    checks = EndChecks("Upload", prep.max_size, expected_length=length, sha1=ctx.query.get("sha1"))
    info = await verify_and_commit(clients, upload_id, out.committed_offset, checks, scope.metadata)
    icon = image_pb2.ImageIcon(
        sha1=info.digests.sha1,
        size=info.size,
        content_type=content_type,
        content_md5=info.content_md5,
        stor=prep.stor or info.stor,
        blob_id=info.blob_id,
    )
    try:
        res: catalog_pb2.ImageResponse = await clients.catalog.AttachImageIcon(
            catalog_pb2.AttachImageIconRequest(
                caller=scope.caller, view=scope.view, uuid=ctx.uuid, icon=icon
            ),
            **scope.rpc,
        )
    except BaseException:
        await delete_blobs(clients, [info.blob_id], scope.metadata)
        raise
    await delete_blobs(clients, list(res.orphaned_blob_ids), scope.metadata)
    return image_response(res.image.view_json, res.image.etag)


async def delete_image_icon(ctx: RequestContext) -> Response:
    """``DELETE /images/:uuid/icon`` (§2.15)."""
    scope = CallScope.of(ctx)
    res: catalog_pb2.ImageResponse = await scope.clients.catalog.DetachImageIcon(
        catalog_pb2.DetachImageIconRequest(caller=scope.caller, view=scope.view, uuid=ctx.uuid), **scope.rpc
    )
    await delete_blobs(scope.clients, list(res.orphaned_blob_ids), scope.metadata)
    return image_response(res.image.view_json, res.image.etag)


# --- downloads ------------------------------------------------------------------------------------


def http_date_of(iso: str) -> str:
    """``Last-Modified`` from a stored ISO-8601 time ("" when it does not parse)."""
    if not iso:
        return ""
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return format_datetime(dt.astimezone(UTC), usegmt=True)


_RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")

#: parse_range result for a syntactically valid but unsatisfiable range.
UNSATISFIABLE = (-1, -1)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as (first, last) inclusive; None to ignore the header (serve 200);
    :data:`UNSATISFIABLE` for 416. Multiple ranges are ignored (a server may always send 200)."""
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    m = _RANGE_SPEC.match(spec)
    if m is None:
        return None
    first_s, last_s = m.groups()
    if not first_s and not last_s:
        return None
    if not first_s:  # suffix: the last N bytes
        n = int(last_s)
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        return None  # invalid spec: ignore the header
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


def if_range_matches(if_range: str | None, etag: str, last_modified: str) -> bool:
    """RFC 9110 §13.1.5: a strong ETag or the exact Last-Modified date must match."""
    if if_range is None:
        return True
    v = if_range.strip()
    if v.startswith("W/"):
        return False
    if v.startswith('"') or not re.match(r"^[A-Za-z]{3},", v):
        return v.strip('"') == etag
    try:
        return bool(last_modified) and parsedate_to_datetime(v) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False


#: ReadBlob with undecoded responses: the bytes of each message are served as a memoryview into
#: the received buffer instead of being copied out of a parsed message (see data_view).
_READ_BLOB = "/imgapi.v1.BlobService/ReadBlob"

RawCall = aio.UnaryStreamCall[blob_pb2.ReadBlobRequest, bytes]


def data_view(raw: bytes) -> memoryview:
    """The ``data`` field (1) of a serialized ReadBlobResponse without copying it.

    Messages after the first hold only ``data``; anything else (the first message's ``info``, an
    empty message) is parsed the ordinary way.
    """
    view = memoryview(raw)
    if raw[:1] == b"\x0a":
        length, shift, i = 0, 0, 1
        while i < len(raw) and i < 11:
            b = raw[i]
            length |= (b & 0x7F) << shift
            i += 1
            if not b & 0x80:
                if i + length == len(raw):
                    return view[i : i + length]
                break
            shift += 7
    return memoryview(blob_pb2.ReadBlobResponse.FromString(raw).data)


async def _open_blob(
    clients: Clients, blob_id: str, offset: int, length: int, metadata: tuple[tuple[str, str], ...]
) -> tuple[memoryview, RawCall]:
    """Start ReadBlob and read its first message, so storage errors still become JSON errors."""
    method = clients.blob_channel.unary_stream(
        _READ_BLOB, request_serializer=blob_pb2.ReadBlobRequest.SerializeToString, response_deserializer=None
    )
    call: RawCall = method(
        blob_pb2.ReadBlobRequest(blob_id=blob_id, offset=offset, length=length),
        timeout=clients.transfer_timeout,
        metadata=metadata,
    )
    try:
        first = await call.read()
    except grpc.RpcError as e:
        raise blob_error(e) from None
    if first is aio.EOF:  # type: ignore[attr-defined]
        return memoryview(b""), call
    assert isinstance(first, bytes)
    return data_view(first), call


def _stream(first: memoryview, call: RawCall) -> AsyncIterator[memoryview]:
    async def gen() -> AsyncIterator[memoryview]:
        try:
            if first:
                yield first
            while True:  # read() only: iteration and read() cannot be mixed on one call
                raw = await call.read()
                if raw is aio.EOF:  # type: ignore[attr-defined]
                    break
                assert isinstance(raw, bytes)
                data = data_view(raw)
                if data:
                    yield data
        finally:
            call.cancel()

    return gen()


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
    """``GET /images/:uuid/file`` (§2.12) plus single-range ``Range`` support."""
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
    rng = parse_range(ctx.request.headers.get("range"), f.size)
    if rng is not None and not if_range_matches(ctx.request.headers.get("if-range"), f.sha1, last_modified):
        rng = None
    if rng == UNSATISFIABLE:
        headers["Content-Range"] = f"bytes */{f.size}"
        body = {"code": "RequestedRangeNotSatisfiable", "message": f"range not satisfiable for size {f.size}"}
        return json_response(body, status=416, headers=headers)
    if rng is not None:
        first_b, last_b = rng
        length = last_b - first_b + 1
        data, call = await _open_blob(ctx.clients, f.blob_id, first_b, length, ctx.metadata)
        headers["Content-Range"] = f"bytes {first_b}-{last_b}/{f.size}"
        headers["Content-Length"] = str(length)
        return StreamingResponse(
            _stream(data, call), status_code=206, headers=headers, media_type="application/octet-stream"
        )
    data, call = await _open_blob(ctx.clients, f.blob_id, 0, 0, ctx.metadata)
    headers["Content-MD5"] = f.content_md5
    headers["Content-Length"] = str(f.size)
    return StreamingResponse(_stream(data, call), headers=headers, media_type="application/octet-stream")


def _not_modified(blob: Any) -> Response:
    """304 with the validators the 200 would carry (``Etag`` = the file/icon SHA-1, ``Last-Modified``)."""
    headers: dict[str, str] = {}
    if blob is not None:
        headers["Etag"] = blob.sha1
        last_modified = http_date_of(blob.mtime)
        if last_modified:
            headers["Last-Modified"] = last_modified
    return empty_response(304, headers)


async def get_image_icon(ctx: RequestContext) -> Response:
    """``GET /images/:uuid/icon`` (§2.14)."""
    res = await _load(ctx, common_pb2.Preconditions.SUBJECT_ICON)
    if not res.image.HasField("icon"):  # before the conditional headers, as the reference does
        raise ImgapiError("ResourceNotFound", f'image "{ctx.uuid}" has no icon')
    if res.not_modified:
        return _not_modified(res.image.icon)
    icon = res.image.icon
    data, call = await _open_blob(ctx.clients, icon.blob_id, 0, 0, ctx.metadata)
    headers = {"Content-MD5": icon.content_md5, "Etag": icon.sha1, "Content-Length": str(icon.size)}
    last_modified = http_date_of(icon.mtime)
    if last_modified:
        headers["Last-Modified"] = last_modified
    return StreamingResponse(_stream(data, call), headers=headers, media_type=icon.content_type)


Handler = Callable[[RequestContext], Awaitable[Response]]


async def add_image_file_from_url(ctx: RequestContext) -> Response:
    """``POST /images/:uuid/file/from-url`` (§2.11), implemented in gateway.remote_import."""
    from gateway.remote_import import add_image_file_from_url as impl

    return await impl(ctx)
