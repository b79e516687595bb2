"""gRPC ↔ :class:`BlobService` translation. Errors become rich statuses (domain imgapi.blob) in the
server's one error interceptor (:func:`blob_service.api.status.blob_status`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import grpc
from imgapi.v1 import blob_pb2, blob_pb2_grpc

from blob_client.wire import PUT_BLOB_MAX_BYTES, WireError, WriteChunk, decode_write_chunk, encode_read_data
from blob_service.api.convert import blob_info, digests_dict, upload_status
from blob_service.domain.errors import BlobError
from blob_service.handlers.operations import BlobService
from blob_service.handlers.writing import Chunk
from imgapi_common.observability import BLOB_BYTES, BLOB_UPLOADS_IN_FLIGHT

log = logging.getLogger(__name__)


def _parse(raw: bytes) -> WriteChunk:
    try:
        return decode_write_chunk(raw)
    except WireError as e:
        raise BlobError("InvalidRequest", f"malformed WriteChunkRequest: {e}") from None


class BlobServicer(blob_pb2_grpc.BlobServiceServicer):
    def __init__(self, service: BlobService) -> None:
        self.service = service

    def _status(self, state: Any) -> blob_pb2.UploadStatus:
        return upload_status(state, self.service.checkpoint_bytes)

    def StartUpload(
        self, request: blob_pb2.StartUploadRequest, context: grpc.ServicerContext
    ) -> blob_pb2.UploadStatus:
        state = self.service.start_upload(
            expected_size=request.expected_size,
            max_size=request.max_size,
            expected=digests_dict(request.expected),
            ttl_seconds=request.ttl_seconds,
            label=request.label,
        )
        return self._status(state)

    def WriteChunks(  # type: ignore[override]  # raw bytes, see register_blob_servicer
        self, request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> blob_pb2.UploadStatus:
        """Requests arrive as raw bytes (see register_blob_servicer) and are parsed without copying.

        The stream counts against the upload-stream cap and is cut when the client goes idle
        (blob_service.handlers.stream_guard)."""
        streams = self.service.streams
        with streams.stream(context.peer(), context.cancel) as watched:
            received = streams.received(watched, iter(request_iterator))
            first = next(received, None)
            if first is None:
                raise BlobError("InvalidRequest", "empty WriteChunks stream")
            upload_id = _parse(first).upload_id
            watched.name, watched.upload_id = f"{upload_id} from {context.peer()}", upload_id

            bytes_in = BLOB_BYTES.labels("in")

            def chunks() -> Iterator[Chunk]:
                raw: bytes | None = first
                while raw is not None:
                    msg = _parse(raw)
                    if msg.upload_id and msg.upload_id != upload_id:
                        raise BlobError("InvalidRequest", "a stream writes to one upload only")
                    bytes_in.inc(len(msg.data))
                    yield Chunk(msg.data, msg.offset, msg.crc32)
                    raw = next(received, None)

            with BLOB_UPLOADS_IN_FLIGHT.track_inprogress():
                return self._status(self.service.write(upload_id, chunks()))

    def GetUpload(
        self, request: blob_pb2.GetUploadRequest, context: grpc.ServicerContext
    ) -> blob_pb2.UploadStatus:
        return self._status(self.service.get_upload(request.upload_id))

    def CommitUpload(
        self, request: blob_pb2.CommitUploadRequest, context: grpc.ServicerContext
    ) -> blob_pb2.BlobInfo:
        meta = self.service.commit(request.upload_id, digests_dict(request.expected), request.expected_size)
        return blob_info(meta)

    def PutBlob(self, request: blob_pb2.PutBlobRequest, context: grpc.ServicerContext) -> blob_pb2.BlobInfo:
        if len(request.data) > PUT_BLOB_MAX_BYTES:
            raise BlobError(
                "InvalidRequest", f"PutBlob carries at most {PUT_BLOB_MAX_BYTES} bytes; use an upload"
            )
        spec = request.spec
        BLOB_BYTES.labels("in").inc(len(request.data))
        meta = self.service.put(
            request.data,
            expected_size=spec.expected_size,
            max_size=spec.max_size,
            expected=digests_dict(spec.expected),
            label=spec.label,
        )
        return blob_info(meta)

    def AbortUpload(
        self, request: blob_pb2.AbortUploadRequest, context: grpc.ServicerContext
    ) -> blob_pb2.AbortUploadResponse:
        self.service.abort(request.upload_id)
        return blob_pb2.AbortUploadResponse()

    def ReadBlob(
        self, request: blob_pb2.ReadBlobRequest, context: grpc.ServicerContext
    ) -> Iterator[blob_pb2.ReadBlobResponse]:
        """The stream is cut when the client takes no message for the download idle time."""
        streams = self.service.streams
        with streams.download(f"{request.blob_id} to {context.peer()}", context.cancel) as watched:
            yield from streams.sent(watched, self._read(request, context))

    def _read(
        self, request: blob_pb2.ReadBlobRequest, context: grpc.ServicerContext
    ) -> Iterator[blob_pb2.ReadBlobResponse]:
        meta, chunks = self.service.read(request.blob_id, request.offset, request.length)
        first = next(chunks, b"")
        out = BLOB_BYTES.labels("out")
        out.inc(len(first))
        yield blob_pb2.ReadBlobResponse(data=bytes(first), info=blob_info(meta))
        for data in chunks:
            out.inc(len(data))
            # Pre-encoded (see register_blob_servicer): one copy of the bytes instead of two.
            yield encode_read_data(data)  # type: ignore[misc]

    def StatBlob(self, request: blob_pb2.StatBlobRequest, context: grpc.ServicerContext) -> blob_pb2.BlobInfo:
        return blob_info(self.service.stat(request.blob_id))

    def DeleteBlob(
        self, request: blob_pb2.DeleteBlobRequest, context: grpc.ServicerContext
    ) -> blob_pb2.DeleteBlobResponse:
        return blob_pb2.DeleteBlobResponse(existed=self.service.delete(request.blob_id))
