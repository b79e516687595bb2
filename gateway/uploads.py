"""Blob uploads of the gateway: the catalog's pre-body checks, the bytes into a blob upload, the
end-of-body checks, the verified blob attached to its image.

Shared by the REST handlers of files and icons (:mod:`gateway.files`), tus (:mod:`gateway.tus`) and
remote file fetches (:mod:`gateway.remote_files`); a body streams into a blob upload in 1 MiB chunks while
it arrives (the blob service computes size and digests), the end-of-body checks run in IMGAPI's order,
then the catalog attaches the verified blob and names the blobs no image references any more.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from imgapi.v1 import catalog_pb2, common_pb2, image_pb2

from blob_client import BlobError, BlobInfo, Upload, UploadSpec, WriteOutcome
from gateway.blobs import delete_orphans
from gateway.clients import Clients
from gateway.context import RequestContext
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import error_reason, from_rpc_error

log = logging.getLogger("gateway.uploads")

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


def blob_error(err: BlobError, *, too_big: ImgapiError | None = None) -> ImgapiError:
    """A blob-service failure as an IMGAPI error (StorageIsDown 503, else 500; a full backend 507,
    all upload streams taken 503)."""
    exc = err.rpc_error
    reason, meta = (err.reason, err.metadata) if exc is None else error_reason(exc)
    if reason == "SizeExceeded" and too_big is not None:
        return too_big
    if reason == "InsufficientStorage":
        return ImgapiError("InsufficientStorage", "insufficient storage: the image store is full")
    if reason == "TooManyUploads":
        return ImgapiError("ServiceUnavailableError", "too many uploads in progress, retry later")
    if reason == "StorageIsDown" or err.transport_code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ):
        return ImgapiError("StorageIsDown", "storage is unavailable")
    if reason is None and exc is not None:
        return from_rpc_error(exc)
    return ImgapiError("InternalError", f"storage error: {reason} {meta.get('message', '')}".strip())


async def cancel_quietly(upload: Upload) -> None:
    """Cancel an upload nothing will finish; a failure only leaves it to expire."""
    try:
        await upload.cancel()
    except BlobError as e:
        log.debug("abort of upload %s: %s", upload.upload_id, e)


# --- writing bytes into a blob upload ------------------------------------------------------------


async def start_upload(scope: CallScope, spec: UploadSpec) -> Upload:
    try:
        return await scope.clients.blobs.create_upload(spec, scope.metadata)
    except BlobError as e:
        raise blob_error(e) from None


async def write_into(
    upload: Upload, source: AsyncIterator[bytes], offset: int, *, too_big: ImgapiError | None = None
) -> WriteOutcome:
    """Stream ``source`` into ``upload`` at ``offset``; a failing source ends the stream normally
    (the bytes before it are kept) and comes back in :attr:`WriteOutcome.source_error`."""
    try:
        return await upload.write(source, offset)
    except BlobError as e:
        if e.transport_code == grpc.StatusCode.CANCELLED:  # the blob service cut a stream gone idle
            raise ImgapiError("RequestTimeoutError", "the upload made no progress and was cut") from None
        raise blob_error(e, too_big=too_big) from None


async def write_all(
    upload: Upload,
    source: AsyncIterator[bytes],
    *,
    too_big: ImgapiError,
    on_source_error: Callable[[BaseException], BaseException] | None = None,
) -> int:
    """A whole body into a new upload; any failure cancels it. Returns the size written."""
    try:
        out = await write_into(upload, source, 0, too_big=too_big)
    except BaseException:
        await cancel_quietly(upload)
        raise
    if out.source_error is not None:
        await cancel_quietly(upload)
        raise on_source_error(out.source_error) if on_source_error else out.source_error
    return out.committed_offset


# --- end-of-body checks and attachment ------------------------------------------------------------


@dataclass(frozen=True)
class EndChecks:
    """The end-of-body checks of one upload flavour, in IMGAPI's order."""

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

    def after_commit(self, info: BlobInfo) -> None:
        if self.sha1 is not None and self.sha1 != info.sha1:
            raise ImgapiError(
                self.code,
                f"{self.sha1_label}, {self.sha1}, does not match the uploaded file sha1 hash, {info.sha1}",
            )


async def verify_and_commit(scope: CallScope, upload: Upload, size: int, checks: EndChecks) -> BlobInfo:
    """Run the end checks around CommitUpload; nothing is left behind when one fails."""
    try:
        checks.before_commit(size)
    except ImgapiError:
        await cancel_quietly(upload)
        raise
    try:
        info = await upload.commit()
    except BlobError as e:
        raise blob_error(e) from None
    try:
        checks.after_commit(info)
    except ImgapiError:
        await delete_orphans(scope, [info.blob_id], strict=False)
        raise
    return info


@dataclass(frozen=True)
class FileMeta:
    compression: str
    stor: str
    dataset_guid: str | None = None


async def attach_file(
    scope: CallScope, uuid: str, info: BlobInfo, meta: FileMeta
) -> catalog_pb2.ImageResponse:
    """AttachImageFile, then drop the blobs nothing references any more."""
    f = image_pb2.ImageFile(
        sha1=info.sha1,
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
        await delete_orphans(scope, [info.blob_id], strict=False)
        raise
    await delete_orphans(scope, res.orphaned_blob_ids, strict=False)
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
    on_source_error: Callable[[BaseException], BaseException] | None = None,
) -> catalog_pb2.ImageResponse:
    """Stream ``source`` into a new blob, verify it, attach it as the image file."""
    upload = await start_upload(scope, UploadSpec(max_size=max_size, label=f"file:{uuid}"))
    too_big = ImgapiError(too_big_code, f"file size exceeds the maximum, {max_size} bytes")
    size = await write_all(upload, source, too_big=too_big, on_source_error=on_source_error)
    info = await verify_and_commit(scope, upload, size, checks)
    return await attach_file(scope, uuid, info, meta)
