"""A typed client of the blob service, for the gateway and replication.

Every method raises :class:`~blob_service.errors.BlobError` (reason from blob.proto, or
``Unavailable``/``Internal`` for transport failures). :meth:`BlobClient.upload` is the one-call,
resumable upload: it retains the bytes the service may not have made durable yet
(``checkpoint_bytes``) and resumes from the committed offset after a transient failure.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import grpc
from imgapi.v1 import blob_pb2, blob_pb2_grpc

from blob_service.errors import BlobError
from blob_service.wire import crc32, encode_write_chunk

#: Message size: gRPC Python moves ~1 GB/s with 1 MiB messages, ~0.3 GB/s with 64 KiB ones.
CHUNK_BYTES = 1024 * 1024
#: Bytes possibly in flight (HTTP/2 windows, socket buffers) when a stream breaks.
IN_FLIGHT_BYTES = 16 * 1024 * 1024
#: Failures after which a retry can succeed.
TRANSIENT = frozenset({"Unavailable", "UploadBusy", "StorageIsDown", "OffsetMismatch", "TooManyUploads"})

T = TypeVar("T")


@dataclass(frozen=True)
class UploadInfo:
    upload_id: str
    committed_offset: int
    expected_size: int
    max_size: int
    expires_at: str
    checkpoint_bytes: int

    @classmethod
    def of(cls, m: blob_pb2.UploadStatus) -> UploadInfo:
        return cls(
            m.upload_id, m.committed_offset, m.expected_size, m.max_size, m.expires_at, m.checkpoint_bytes
        )


@dataclass(frozen=True)
class BlobInfo:
    blob_id: str
    size: int
    sha1: str
    md5: str
    sha256: str
    content_md5: str  # base64 MD5, for the HTTP Content-MD5 header
    created_at: str
    stor: str

    @classmethod
    def of(cls, m: blob_pb2.BlobInfo) -> BlobInfo:
        d = m.digests
        return cls(m.blob_id, m.size, d.sha1, d.md5, d.sha256, m.content_md5, m.created_at, m.stor)


def rechunk(data: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The bytes of ``data`` in pieces of at most ``size`` (small pieces are not merged)."""
    for block in data:
        if len(block) <= size:
            if block:
                yield bytes(block)
            continue
        view = memoryview(block)
        for i in range(0, len(view), size):
            yield bytes(view[i : i + size])


#: Full name of the WriteChunks method, for callers that send pre-encoded requests.
WRITE_CHUNKS = "/imgapi.v1.BlobService/WriteChunks"


def _digests(sha1: str | None, md5: str | None, sha256: str | None) -> blob_pb2.Digests:
    return blob_pb2.Digests(sha1=sha1 or "", md5=md5 or "", sha256=sha256 or "")


class _Retained:
    """The most recent bytes sent, enough to resend from any offset the service may fall back to."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.chunks: deque[tuple[int, bytes]] = deque()
        self.size = 0

    @property
    def start(self) -> int:
        return self.chunks[0][0] if self.chunks else -1

    def add(self, offset: int, data: bytes) -> None:
        self.chunks.append((offset, data))
        self.size += len(data)
        while self.chunks and self.size - len(self.chunks[0][1]) >= self.window:
            self.size -= len(self.chunks.popleft()[1])

    def since(self, offset: int) -> Iterator[bytes]:
        for start, data in list(self.chunks):
            end = start + len(data)
            if end <= offset:
                continue
            yield data if start >= offset else data[offset - start :]


class BlobClient:
    def __init__(
        self,
        channel: grpc.Channel,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        checksum: bool = True,
        timeout: float | None = None,
        retries: int = 5,
        retry_delay: float = 0.2,
    ) -> None:
        self.stub = blob_pb2_grpc.BlobServiceStub(channel)
        # WriteChunks with requests encoded by encode_write_chunk (fewer copies of each chunk)
        self._write_chunks = channel.stream_unary(
            WRITE_CHUNKS, request_serializer=None, response_deserializer=blob_pb2.UploadStatus.FromString
        )
        self.chunk_bytes = chunk_bytes
        self.checksum = checksum
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except grpc.RpcError as e:
            raise BlobError.from_rpc_error(e) from None

    # --- uploads ----------------------------------------------------------------------------------

    def start_upload(
        self,
        *,
        expected_size: int = 0,
        max_size: int = 0,
        sha1: str | None = None,
        md5: str | None = None,
        sha256: str | None = None,
        ttl_seconds: int = 0,
        label: str = "",
    ) -> UploadInfo:
        req = blob_pb2.StartUploadRequest(
            expected_size=expected_size,
            max_size=max_size,
            expected=_digests(sha1, md5, sha256),
            ttl_seconds=ttl_seconds,
            label=label,
        )
        return UploadInfo.of(self._call(lambda: self.stub.StartUpload(req, timeout=self.timeout)))

    def get_upload(self, upload_id: str) -> UploadInfo:
        req = blob_pb2.GetUploadRequest(upload_id=upload_id)
        return UploadInfo.of(self._call(lambda: self.stub.GetUpload(req, timeout=self.timeout)))

    def write(self, upload_id: str, offset: int, data: Iterable[bytes]) -> int:
        """Stream ``data`` into the upload at ``offset``; returns the new committed offset.

        An exception raised by ``data`` ends the stream cleanly (what was sent is kept) and is then
        re-raised as is.
        """
        source_error: list[BaseException] = []

        def messages() -> Iterator[bytes]:
            pos = offset
            first = True
            try:
                for piece in rechunk(data, self.chunk_bytes):
                    crc = crc32(piece) if self.checksum else None
                    yield encode_write_chunk(
                        piece, upload_id=upload_id if first else "", offset=pos, crc32=crc
                    )
                    first = False
                    pos += len(piece)
            except Exception as e:
                source_error.append(e)
            if first:  # nothing to send: still name the upload so the service can answer
                yield encode_write_chunk(b"", upload_id=upload_id, offset=offset)

        status = self._call(lambda: self._write_chunks(messages(), timeout=self.timeout))
        if source_error:
            raise source_error[0]
        return int(status.committed_offset)

    def commit(
        self,
        upload_id: str,
        *,
        sha1: str | None = None,
        md5: str | None = None,
        sha256: str | None = None,
        expected_size: int = 0,
    ) -> BlobInfo:
        req = blob_pb2.CommitUploadRequest(
            upload_id=upload_id, expected=_digests(sha1, md5, sha256), expected_size=expected_size
        )
        return BlobInfo.of(self._call(lambda: self.stub.CommitUpload(req, timeout=self.timeout)))

    def abort(self, upload_id: str) -> None:
        req = blob_pb2.AbortUploadRequest(upload_id=upload_id)
        self._call(lambda: self.stub.AbortUpload(req, timeout=self.timeout))

    def upload(
        self,
        data: Iterable[bytes],
        *,
        expected_size: int | None = None,
        sha1: str | None = None,
        md5: str | None = None,
        sha256: str | None = None,
        max_size: int = 0,
        label: str = "",
        ttl_seconds: int = 0,
        resume_window: int | None = None,
    ) -> BlobInfo:
        """Start, write (resuming after transient failures) and commit; returns the blob.

        A failure that is not transient (or persists over ``retries``) aborts the upload and raises.
        """
        info = self.start_upload(
            expected_size=expected_size or 0,
            max_size=max_size,
            sha1=sha1,
            md5=md5,
            sha256=sha256,
            ttl_seconds=ttl_seconds,
            label=label,
        )
        uid = info.upload_id
        try:
            self._write_resumably(uid, data, resume_window or info.checkpoint_bytes + IN_FLIGHT_BYTES)
            return self._retrying(lambda: self.commit(uid), only={"Unavailable", "StorageIsDown"})
        except BaseException:
            with contextlib.suppress(BlobError):
                self.abort(uid)
            raise

    def _write_resumably(self, upload_id: str, data: Iterable[bytes], window: int) -> None:
        source = rechunk(data, self.chunk_bytes)
        retained = _Retained(window)
        sent = 0  # offset of the next byte the source will give

        def from_source() -> Iterator[bytes]:
            nonlocal sent
            for piece in source:
                retained.add(sent, piece)
                sent += len(piece)
                yield piece

        resume = 0
        failures = 0
        while True:
            try:
                self.write(upload_id, resume, itertools.chain(retained.since(resume), from_source()))
                return
            except BlobError as e:
                failures += 1
                if e.reason not in TRANSIENT or failures > self.retries:
                    raise
                time.sleep(self.retry_delay * failures)
                resume = self._resume_point(upload_id, e)
                if resume > sent:
                    raise BlobError("Internal", f"upload {upload_id} is at {resume}, beyond {sent}") from e
                if resume < sent and (retained.start < 0 or resume < retained.start):
                    raise BlobError(
                        "Internal",
                        f"cannot resume upload {upload_id} at {resume}: bytes from "
                        f"{retained.start} only are retained",
                    ) from e

    def _resume_point(self, upload_id: str, err: BlobError) -> int:
        if "current_offset" in err.metadata:
            return int(err.metadata["current_offset"])
        return self._retrying(lambda: self.get_upload(upload_id)).committed_offset

    def _retrying(self, fn: Callable[[], T], only: frozenset[str] | set[str] = TRANSIENT) -> T:
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except BlobError as e:
                if e.reason not in only or attempt == self.retries:
                    raise
                time.sleep(self.retry_delay * (attempt + 1))
        raise AssertionError("unreachable")

    # --- blobs ------------------------------------------------------------------------------------

    def open(
        self, blob_id: str, offset: int = 0, length: int = 0
    ) -> tuple[BlobInfo, Generator[bytes, None, None]]:
        """The blob's info (before any byte is consumed) and an iterator over the requested range.

        A stream broken by a transient failure continues from where it stopped.
        """
        req = blob_pb2.ReadBlobRequest(blob_id=blob_id, offset=offset, length=length)
        call = self.stub.ReadBlob(req, timeout=self.timeout)
        responses: Iterator[blob_pb2.ReadBlobResponse] = iter(call)
        try:
            first = self._call(lambda: next(responses))
        except BaseException:
            call.cancel()  # type: ignore[no-untyped-call]
            raise
        info = BlobInfo.of(first.info)
        end = offset + length if length else info.size

        def chunks() -> Generator[bytes, None, None]:
            nonlocal call, responses
            pos = offset
            failures = 0
            try:
                if first.data:
                    pos += len(first.data)
                    yield first.data
                while True:
                    try:
                        for msg in responses:
                            pos += len(msg.data)
                            yield msg.data
                        return
                    except grpc.RpcError as e:
                        err = BlobError.from_rpc_error(e)
                        failures += 1
                        if err.reason not in ("Unavailable", "StorageIsDown") or failures > self.retries:
                            raise err from None
                        if pos >= end:
                            return
                        time.sleep(self.retry_delay * failures)
                        again = blob_pb2.ReadBlobRequest(blob_id=blob_id, offset=pos, length=end - pos)
                        call = self.stub.ReadBlob(again, timeout=self.timeout)
                        responses = iter(call)
            finally:
                call.cancel()  # type: ignore[no-untyped-call]  # reader stopped early: end the stream

        return info, chunks()

    def read(self, blob_id: str, offset: int = 0, length: int = 0) -> Generator[bytes, None, None]:
        """The bytes of ``[offset, offset+length)`` (``length`` 0: to the end)."""
        _, chunks = self.open(blob_id, offset, length)
        yield from chunks

    def stat(self, blob_id: str) -> BlobInfo:
        req = blob_pb2.StatBlobRequest(blob_id=blob_id)
        return BlobInfo.of(self._call(lambda: self.stub.StatBlob(req, timeout=self.timeout)))

    def delete(self, blob_id: str) -> bool:
        req = blob_pb2.DeleteBlobRequest(blob_id=blob_id)
        return bool(self._call(lambda: self.stub.DeleteBlob(req, timeout=self.timeout)).existed)
