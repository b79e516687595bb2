"""Resumable image-file uploads with the tus 1.0 protocol (core, creation, expiration, checksum,
termination), an addition to IMGAPI.

Routes (gateway/routes/table.py)::

    OPTIONS /images/:uuid/file/uploads                  capabilities
    POST    /images/:uuid/file/uploads                  creation   (Upload-Length, Upload-Metadata)
    HEAD    /images/:uuid/file/uploads/:upload_id       offset     (Upload-Offset, Upload-Length)
    PATCH   /images/:uuid/file/uploads/:upload_id       append     (application/offset+octet-stream)
    DELETE  /images/:uuid/file/uploads/:upload_id       termination

Creation runs AddImageFile's pre-body checks (``PrepareImageUpload``, Upload-Length as the declared
length) and starts a blob-service upload; the PATCH that reaches Upload-Length runs the same
end-of-body checks and attachment as ``PUT /images/:uuid/file``, so the manifest ``files`` entry is
identical. ``compression`` (required), ``sha1``, ``dataset_guid`` and ``storage`` come from the query
string or from Upload-Metadata. Upload state lives in the blob service (it survives gateway
restarts); the upload id in the URL carries the blob upload id (a 128-bit secret) and the parameters
given at creation. Query parameters (``account``, ``channel``) are kept in the ``Location``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import tempfile
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from email.utils import format_datetime
from functools import partial
from typing import Protocol

from starlette.requests import ClientDisconnect
from starlette.responses import Response

from blob_client import BlobError, Upload, UploadInfo, UploadSpec
from gateway.context import RequestContext
from gateway.http.errors import render
from gateway.http.responses import json_response
from gateway.routes.files import request_body
from gateway.routes.upload_scope import CallScope
from imgapi_common.errors import ImgapiError
from imgapi_common.image_uploads import (
    KIND_FILE,
    EndChecks,
    FileMeta,
    attach_file,
    blob_error,
    cancel_quietly,
    prepare,
    start_upload,
    verify_and_commit,
    write_into,
)

log = logging.getLogger("gateway.routes.tus")

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,expiration,checksum,termination"
#: Inactivity after which an unfinished upload expires (seconds; 0 = blob-service default).
TTL_SECONDS = 24 * 3600
#: Checksummed PATCH bodies are spooled (memory up to this, then a temporary file) until verified.
SPOOL_MEMORY = 8 << 20

Spool = tempfile.SpooledTemporaryFile[bytes]


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes, /) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


CHECKSUMS: dict[str, Callable[[], _Hash]] = {
    "sha1": hashlib.sha1,
    "md5": hashlib.md5,
    "sha256": hashlib.sha256,
    "crc32": _Crc32,
}


def _base_headers() -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION}


def tus_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """A tus protocol error (409, 412, 415, 460...) with an IMGAPI-shaped JSON body."""
    return json_response(
        {"code": code, "message": message}, status=status, headers={**_base_headers(), **(headers or {})}
    )


Handler = Callable[[RequestContext], Awaitable[Response]]


async def _with_tus(handler: Handler, ctx: RequestContext) -> Response:
    """Tus-Resumable on every response (errors included) and the protocol version check."""
    version = ctx.request.headers.get("tus-resumable")
    if version != TUS_VERSION:
        return tus_error(
            412,
            "PreconditionFailed",
            f"unsupported Tus-Resumable {version!r} (supported: {TUS_VERSION})",
            {"Tus-Version": TUS_VERSION},
        )
    try:
        response = await handler(ctx)
    except Exception as exc:
        response = render(exc)
    for k, v in _base_headers().items():
        response.headers[k] = v
    return response


# --- upload ids --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadRef:
    """What the URL's upload id carries: the blob upload and the AddImageFile parameters."""

    upload_id: str
    uuid: str
    length: int
    compression: str
    sha1: str | None = None
    dataset_guid: str | None = None
    storage: str = ""

    def encode(self) -> str:
        meta = {k: v for k, v in asdict(self).items() if k != "upload_id" and v not in (None, "")}
        raw = json.dumps(meta, separators=(",", ":")).encode()
        return f"{self.upload_id}.{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"

    @classmethod
    def decode(cls, token: str, uuid: str) -> UploadRef:
        upload_id, _, packed = token.partition(".")
        try:
            meta = json.loads(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
            ref = cls(upload_id=upload_id, **meta)
        except (ValueError, TypeError, binascii.Error):
            raise ImgapiError("ResourceNotFound", f"upload {token} not found") from None
        if ref.uuid != uuid or len(upload_id) != 32 or not isinstance(ref.length, int):
            raise ImgapiError("ResourceNotFound", f"upload {token} not found")
        return ref


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata: key b64value,key2 b64value2`` (values may be absent)."""
    out: dict[str, str] = {}
    for item in (header or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise ImgapiError("BadRequestError", f"invalid Upload-Metadata value for {key!r}") from None
    return out


def http_expires(iso: str) -> str | None:
    try:
        return format_datetime(datetime.fromisoformat(iso.replace("Z", "+00:00")), usegmt=True)
    except ValueError:
        return None


async def _upload(ctx: RequestContext, ref: UploadRef, token: str) -> Upload:
    """The blob upload behind the URL, with its current status."""
    try:
        return await ctx.clients.blobs.upload_of(ref.upload_id, ctx.metadata)
    except BlobError as e:
        if e.reason in ("UploadNotFound", "InvalidId"):
            raise ImgapiError("ResourceNotFound", f"upload {token} not found") from None
        raise blob_error(e) from None


def _offset_headers(st: UploadInfo, ref: UploadRef) -> dict[str, str]:
    h = {
        "Upload-Offset": str(st.committed_offset),
        "Upload-Length": str(ref.length),
        "Cache-Control": "no-store",
    }
    expires = http_expires(st.expires_at)
    if expires:
        h["Upload-Expires"] = expires
    return h


# --- handlers ------------------------------------------------------------------------------------------


async def options(ctx: RequestContext) -> Response:
    """``OPTIONS``: the server's tus capabilities (no Tus-Resumable required)."""
    return Response(
        None,
        status_code=204,
        headers={
            **_base_headers(),
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(ctx.settings.max_file_size),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
        },
    )


async def _create_upload(ctx: RequestContext) -> Response:
    """``POST /images/:uuid/file/uploads`` (creation): pre-body checks, then a blob upload."""
    meta = parse_metadata(ctx.request.headers.get("upload-metadata"))

    def param(name: str) -> str:
        return ctx.query.raw(name) or meta.get(name, "")

    raw_length = ctx.request.headers.get("upload-length", "")
    if not raw_length.isdigit():
        raise ImgapiError("BadRequestError", "a valid Upload-Length header is required")
    length = int(raw_length)
    scope = CallScope.of(ctx)
    compression, storage = param("compression"), param("storage")
    prep = await prepare(
        scope, ctx.uuid, KIND_FILE, compression=compression, storage=storage, content_length=raw_length
    )
    if length == 0:
        raise ImgapiError("Download", "image file size is 0 bytes, empty files are not allowed")
    spec = UploadSpec(expected_size=length, max_size=length, ttl_seconds=TTL_SECONDS, label=f"tus:{ctx.uuid}")
    st = (await start_upload(scope, spec)).info
    ref = UploadRef(
        upload_id=st.upload_id,
        uuid=ctx.uuid,
        length=length,
        compression=compression,
        sha1=param("sha1") or None,
        dataset_guid=param("dataset_guid") or None,
        storage=prep.stor,
    )
    location = f"/images/{ctx.uuid}/file/uploads/{ref.encode()}"
    if ctx.query.raw_string:
        location += f"?{ctx.query.raw_string}"
    headers = {"Location": location, **_offset_headers(st, ref)}
    headers.pop("Cache-Control")
    return Response(b"", status_code=201, headers=headers)


async def _head_upload(ctx: RequestContext) -> Response:
    """``HEAD``: the resume point."""
    token = ctx.params["upload_id"]
    ref = UploadRef.decode(token, ctx.uuid)
    upload = await _upload(ctx, ref, token)
    return Response(None, status_code=200, headers=_offset_headers(upload.info, ref))


async def _delete_upload(ctx: RequestContext) -> Response:
    """``DELETE`` (termination): the upload and its bytes are gone."""
    token = ctx.params["upload_id"]
    ref = UploadRef.decode(token, ctx.uuid)
    upload = await _upload(ctx, ref, token)
    await cancel_quietly(upload)
    return Response(None, status_code=204)


def _parse_checksum(header: str | None) -> tuple[str, bytes] | None:
    if header is None:
        return None
    algo, _, value = header.strip().partition(" ")
    if algo.lower() not in CHECKSUMS:
        raise ImgapiError("BadRequestError", f"unsupported checksum algorithm {algo!r}")
    try:
        return algo.lower(), base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raise ImgapiError("BadRequestError", "invalid Upload-Checksum value") from None


async def _spool(source: AsyncIterator[bytes], h: _Hash) -> Spool:
    spool: Spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    try:
        async for piece in source:
            h.update(piece)
            spool.write(piece)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


async def _replay(spool: Spool) -> AsyncIterator[bytes]:
    while True:
        data = spool.read(1 << 20)
        if not data:
            return
        yield data


async def _within(source: AsyncIterator[bytes], room: int, length: int) -> AsyncIterator[bytes]:
    """``source``, cut with an error as soon as it passes ``room`` bytes (what is left of
    Upload-Length): a PATCH never makes the gateway read, spool or store more than that."""
    seen = 0
    async for piece in source:
        seen += len(piece)
        if seen > room:
            raise ImgapiError("BadRequestError", f"the body would exceed Upload-Length {length}")
        yield piece


async def _patch_upload(ctx: RequestContext) -> Response:
    """``PATCH``: append at Upload-Offset; the PATCH reaching Upload-Length attaches the file."""
    token = ctx.params["upload_id"]
    ref = UploadRef.decode(token, ctx.uuid)
    headers = ctx.request.headers
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/offset+octet-stream":
        return tus_error(415, "InvalidContent", "Content-Type must be application/offset+octet-stream")
    raw_offset = headers.get("upload-offset", "")
    if not raw_offset.isdigit():
        raise ImgapiError("BadRequestError", "a valid Upload-Offset header is required")
    offset = int(raw_offset)
    checksum = _parse_checksum(headers.get("upload-checksum"))
    upload = await _upload(ctx, ref, token)
    st = upload.info
    if offset != st.committed_offset:
        return tus_error(
            409,
            "Conflict",
            f"Upload-Offset {offset} does not match the current offset {st.committed_offset}",
            {"Upload-Offset": str(st.committed_offset)},
        )
    declared = headers.get("content-length", "")
    if declared.isdigit() and offset + int(declared) > ref.length:
        raise ImgapiError("BadRequestError", f"the body would exceed Upload-Length {ref.length}")
    too_big = ImgapiError("BadRequestError", f"the body would exceed Upload-Length {ref.length}")
    source = _within(request_body(ctx), ref.length - offset, ref.length)
    spool: Spool | None = None
    if checksum is not None:
        algo, expected = checksum
        h = CHECKSUMS[algo]()
        try:
            spool = await _spool(source, h)
        except ClientDisconnect:
            return Response(None, status_code=400)  # nothing written: the client resends the chunk
        if h.digest() != expected:
            spool.close()
            return tus_error(460, "ChecksumMismatch", f"{algo} checksum of the request body does not match")
        source = _replay(spool)
    try:
        out = await write_into(upload, source, offset, too_big=too_big)
    finally:
        if spool is not None:
            spool.close()
    new_offset = out.committed_offset
    if isinstance(out.source_error, ImgapiError):
        raise out.source_error  # too long or idle; the bytes before it are kept (HEAD tells)
    if out.source_error is not None and not isinstance(out.source_error, ClientDisconnect):
        log.warning("tus PATCH %s: %s", token[:32], out.source_error)
    resp_headers = {"Upload-Offset": str(new_offset)}
    if new_offset < ref.length:
        resp_headers = _offset_headers(replace(st, committed_offset=new_offset), ref)
        resp_headers.pop("Cache-Control")
        resp_headers.pop("Upload-Length")
        return Response(None, status_code=204, headers=resp_headers)
    await _finish(ctx, ref, upload, new_offset)
    return Response(None, status_code=204, headers=resp_headers)


async def _finish(ctx: RequestContext, ref: UploadRef, upload: Upload, size: int) -> None:
    """The end of AddImageFile: the same checks and attachment as a plain PUT."""
    scope = CallScope.of(ctx)
    checks = EndChecks(
        "Download", ref.length, expected_length=ref.length, length_label="Upload-Length", sha1=ref.sha1
    )
    info = await verify_and_commit(scope, upload, size, checks)
    await attach_file(scope, ref.uuid, info, FileMeta(ref.compression, ref.storage, ref.dataset_guid))


# The handlers behind _with_tus: partials of module-level functions, not closures made at import,
# so that scripts/mutation can mutate both (docs/testing.md).
create_upload: Handler = partial(_with_tus, _create_upload)
head_upload: Handler = partial(_with_tus, _head_upload)
delete_upload: Handler = partial(_with_tus, _delete_upload)
patch_upload: Handler = partial(_with_tus, _patch_upload)

__all__ = ["create_upload", "delete_upload", "head_upload", "options", "patch_upload"]
