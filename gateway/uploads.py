"""Blob uploads of the gateway: the catalog's pre-body checks, the bytes into a blob upload, the
end-of-body checks, the verified blob attached to its image.

Shared by the REST handlers of files and icons (:mod:`gateway.files`), tus (:mod:`gateway.tus`) and
remote imports (:mod:`gateway.remote_import`); a body streams into a blob upload in 1 MiB chunks while
it arrives (the blob service computes size and digests), the end-of-body checks run in spec order,
then the catalog attaches the verified blob and names the blobs no image references any more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from imgapi.v1 import blob_pb2, catalog_pb2, common_pb2, image_pb2

from blob_service.client import WRITE_CHUNKS
from blob_service.wire import encode_write_chunk
from gateway.clients import Clients
from gateway.context import RequestContext
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import error_reason, from_rpc_error

log = logging.getLogger("gateway.uploads")

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
        ),
        **scope.rpc,
    )
    # The last check before any byte: a declared length (digits; a chunked body has none) above
    # the maximum of the kind.
    if content_length.strip().isdecimal() and int(content_length) > res.max_size:
        what = "icon" if kind == catalog_pb2.PrepareImageUploadRequest.KIND_ICON else "file"
        raise ImgapiError(
            "Upload",
            f"{what} size, {int(content_length)}, exceeds the maximum allowed {what} size, {res.max_size}",
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
