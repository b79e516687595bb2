"""A verified image file or icon: the catalog's pre-body checks, the bytes into a blob upload, the
end-of-body checks in IMGAPI's order, the blob attached to its image, orphaned blobs deleted.

Shared by the gateway (request bodies: files, icons, tus) and the replication service (files fetched
from a source IMGAPI or a URL). Both call the services through an :class:`UploadScope`: the catalog's
asynchronous stub, the :class:`blob_client.AsyncBlobClient`, and the caller the calls run for.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, image_pb2

from blob_client import (
    PUT_BLOB_MAX_BYTES,
    AsyncBlobClient,
    BlobError,
    BlobInfo,
    Upload,
    UploadSpec,
    WriteOutcome,
)
from blob_client.policy import storage_unreachable
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import from_rpc_error

log = logging.getLogger("imgapi.uploads")

KIND_FILE = catalog_pb2.PrepareImageUploadRequest.KIND_FILE
KIND_ICON = catalog_pb2.PrepareImageUploadRequest.KIND_ICON

Metadata = tuple[tuple[str, str], ...]


class UploadScope(Protocol):
    """What every catalog/blob call of one file operation needs."""

    @property
    def catalog(self) -> catalog_pb2_grpc.CatalogServiceAsyncStub: ...

    @property
    def blobs(self) -> AsyncBlobClient: ...

    @property
    def caller(self) -> common_pb2.CallerContext: ...

    @property
    def view(self) -> common_pb2.ImageView: ...

    @property
    def metadata(self) -> Metadata: ...

    @property
    def rpc(self) -> dict[str, Any]:
        """Options of an ordinary catalog call (timeout, metadata)."""
        ...


def blob_error(err: BlobError, *, too_big: ImgapiError | None = None) -> ImgapiError:
    """A blob-service failure as an IMGAPI error (StorageIsDown 503, else 500; a full backend 507,
    all upload streams taken 503). A failed call that carried no blob-service error reads as any
    failed call does (:func:`from_rpc_error`)."""
    if err.reason == "SizeExceeded" and too_big is not None:
        return too_big
    if err.reason == "InsufficientStorage":
        return ImgapiError("InsufficientStorage", "insufficient storage: the image store is full")
    if err.reason == "TooManyUploads":
        return ImgapiError("ServiceUnavailableError", "too many uploads in progress, retry later")
    if storage_unreachable(err):
        return ImgapiError("StorageIsDown", "storage is unavailable")
    if err.from_transport and err.rpc_error is not None:
        return from_rpc_error(err.rpc_error)
    return ImgapiError(
        "InternalError", f"storage error: {err.reason} {err.metadata.get('message', '')}".strip()
    )


async def delete_orphans(
    blobs: AsyncBlobClient, blob_ids: Iterable[str], metadata: Metadata = (), *, strict: bool = True
) -> None:
    """Delete each blob. An unreachable blob store is 503 ``StorageIsDown`` when ``strict``;
    other failures leave harmless garbage (logged), never a dangling reference."""
    try:
        await blobs.delete_orphans(blob_ids, metadata, strict=strict)
    except BlobError:
        raise ImgapiError("StorageIsDown", "storage is down") from None


async def cancel_quietly(upload: Upload) -> None:
    """Cancel an upload nothing will finish; a failure only leaves it to expire."""
    try:
        await upload.cancel()
    except BlobError as e:
        log.debug("abort of upload %s: %s", upload.upload_id, e)


# --- writing bytes into a blob upload ------------------------------------------------------------


async def start_upload(scope: UploadScope, spec: UploadSpec) -> Upload:
    try:
        return await scope.blobs.create_upload(spec, scope.metadata)
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


async def verify_and_commit(scope: UploadScope, upload: Upload, size: int, checks: EndChecks) -> BlobInfo:
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
    return await _after_commit(scope, info, checks)


async def _after_commit(scope: UploadScope, info: BlobInfo, checks: EndChecks) -> BlobInfo:
    """The checks of a stored blob (its SHA-1); a blob that fails them is deleted."""
    try:
        checks.after_commit(info)
    except ImgapiError:
        await delete_orphans(scope.blobs, [info.blob_id], scope.metadata, strict=False)
        raise
    return info


@dataclass(frozen=True)
class FileMeta:
    compression: str
    stor: str
    dataset_guid: str | None = None


async def attach_file(
    scope: UploadScope, uuid: str, info: BlobInfo, meta: FileMeta
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
        res: catalog_pb2.ImageResponse = await scope.catalog.AttachImageFile(
            catalog_pb2.AttachImageFileRequest(caller=scope.caller, view=scope.view, uuid=uuid, file=f),
            **scope.rpc,
        )
    except BaseException:
        await delete_orphans(scope.blobs, [info.blob_id], scope.metadata, strict=False)
        raise
    await delete_orphans(scope.blobs, res.orphaned_blob_ids, scope.metadata, strict=False)
    return res


async def prepare(
    scope: UploadScope,
    uuid: str,
    kind: catalog_pb2.PrepareImageUploadRequest.Kind.ValueType,
    *,
    compression: str = "",
    storage: str = "",
    content_type: str = "",
    content_length: str = "",
) -> catalog_pb2.PrepareImageUploadResponse:
    """The catalog's checks before a body is read (the image, its owner, its state, the parameters)."""
    res: catalog_pb2.PrepareImageUploadResponse = await scope.catalog.PrepareImageUpload(
        catalog_pb2.PrepareImageUploadRequest(
            caller=scope.caller,
            uuid=uuid,
            kind=kind,
            compression=compression,
            storage=storage,
            content_type=content_type,
            plan_only=True,
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


async def store_blob(
    scope: UploadScope,
    spec: UploadSpec,
    source: AsyncIterator[bytes],
    checks: EndChecks,
    *,
    too_big: ImgapiError,
    declared_length: int | None = None,
    on_source_error: Callable[[BaseException], BaseException] | None = None,
) -> BlobInfo:
    """``source`` as a new verified blob. A body whose declared length is at most
    :data:`~blob_client.PUT_BLOB_MAX_BYTES` is read whole and stored with one PutBlob call;
    anything else streams through an upload (StartUpload, WriteChunks, CommitUpload). The
    checks, their order and the errors are the same either way."""
    if declared_length is None or declared_length > PUT_BLOB_MAX_BYTES:
        upload = await start_upload(scope, spec)
        size = await write_all(upload, source, too_big=too_big, on_source_error=on_source_error)
        return await verify_and_commit(scope, upload, size, checks)
    data = await _read_small(source, declared_length, on_source_error)
    checks.before_commit(len(data))
    try:
        info = await scope.blobs.put(spec, data, scope.metadata)
    except BlobError as e:
        raise blob_error(e, too_big=too_big) from None
    return await _after_commit(scope, info, checks)


async def _read_small(
    source: AsyncIterator[bytes],
    declared_length: int,
    on_source_error: Callable[[BaseException], BaseException] | None,
) -> bytes:
    """The whole body of a small request; reading stops once past the declared length (the end
    checks then report the mismatch), so memory stays bounded whatever arrives."""
    data = bytearray()
    try:
        async for piece in source:
            data += piece
            if len(data) > declared_length:
                break
    except Exception as e:  # a client disconnect, a remote source failing...
        raise (on_source_error(e) if on_source_error else e) from None
    return bytes(data)


async def store_file_from(
    scope: UploadScope,
    uuid: str,
    source: AsyncIterator[bytes],
    *,
    max_size: int,
    checks: EndChecks,
    meta: FileMeta,
    too_big_code: str = "Upload",
    declared_length: int | None = None,
    on_source_error: Callable[[BaseException], BaseException] | None = None,
) -> catalog_pb2.ImageResponse:
    """Store ``source`` as a new verified blob (:func:`store_blob`), attach it as the image file."""
    too_big = ImgapiError(too_big_code, f"file size exceeds the maximum, {max_size} bytes")
    spec = UploadSpec(max_size=max_size, label=f"file:{uuid}")
    info = await store_blob(
        scope,
        spec,
        source,
        checks,
        too_big=too_big,
        declared_length=declared_length,
        on_source_error=on_source_error,
    )
    return await attach_file(scope, uuid, info, meta)
