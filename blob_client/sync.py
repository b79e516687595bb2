"""The blocking blob client (replication: the copier and its sources; benchmarks).

Every method raises :class:`~blob_client.errors.BlobError` (reason from blob.proto, or
``Unavailable``/``Internal`` for transport failures). An upload is a :class:`SyncUpload` handle —
create, write, commit, cancel; :meth:`BlobClient.upload` is the one-call upload that resumes from
the committed offset after a transient failure, resending the bytes the service may not have made
durable yet (``checkpoint_bytes``). Reads broken by a transient failure continue where they stopped.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TypeVar

import grpc
from imgapi.v1 import blob_pb2, blob_pb2_grpc

from blob_client.chunks import CHUNK_BYTES, Buffer, Retained, rechunk
from blob_client.errors import BlobError
from blob_client.model import BlobInfo, UploadInfo, UploadSpec, commit_request
from blob_client.policy import RetryPolicy, orphan_not_deleted
from blob_client.wire import WRITE_CHUNKS, WriteFramer

#: Bytes possibly in flight (HTTP/2 windows, socket buffers) when a stream breaks.
IN_FLIGHT_BYTES = 16 * 1024 * 1024

T = TypeVar("T")


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
        policy: RetryPolicy | None = None,
    ) -> None:
        """``retries``/``retry_delay`` make the :class:`RetryPolicy`, unless ``policy`` is given."""
        self.stub = blob_pb2_grpc.BlobServiceStub(channel)
        # WriteChunks with requests framed by blob_client.wire (fewer copies of each chunk)
        self._write_chunks = channel.stream_unary(
            WRITE_CHUNKS, request_serializer=None, response_deserializer=blob_pb2.UploadStatus.FromString
        )
        self.chunk_bytes = chunk_bytes
        self.checksum = checksum
        self.timeout = timeout
        self.policy = policy or RetryPolicy(retries, retry_delay)

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except grpc.RpcError as e:
            raise BlobError.from_rpc_error(e) from None

    def _repeating(self, fn: Callable[[], T]) -> T:
        failures = 0
        while True:
            try:
                return fn()
            except BlobError as e:
                failures += 1
                if not self.policy.may_repeat(e, failures):
                    raise
                time.sleep(self.policy.wait(failures))

    # --- uploads ----------------------------------------------------------------------------------

    def create_upload(self, spec: UploadSpec) -> SyncUpload:
        """Start an upload; the handle writes, commits or cancels it."""
        req = spec.request()
        info = UploadInfo.of(self._call(lambda: self.stub.StartUpload(req, timeout=self.timeout)))
        return SyncUpload(self, info)

    def put(self, spec: UploadSpec, data: Buffer) -> BlobInfo:
        """A small blob (at most :data:`~blob_client.wire.PUT_BLOB_MAX_BYTES`) in one call, checked
        as a commit is. Not repeated on failure: a repeat could store the bytes twice."""
        req = blob_pb2.PutBlobRequest(spec=spec.request(), data=bytes(data))
        return BlobInfo.of(self._call(lambda: self.stub.PutBlob(req, timeout=self.timeout)))

    def upload_of(self, upload_id: str) -> SyncUpload:
        """A handle on an upload started earlier (looked up: raises ``UploadNotFound``)."""
        return SyncUpload(self, self._repeating(lambda: self.get_upload(upload_id)))

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
        spec = UploadSpec(expected_size, max_size, sha1, md5, sha256, ttl_seconds, label)
        return self.create_upload(spec).info

    def get_upload(self, upload_id: str) -> UploadInfo:
        req = blob_pb2.GetUploadRequest(upload_id=upload_id)
        return UploadInfo.of(self._call(lambda: self.stub.GetUpload(req, timeout=self.timeout)))

    def write(self, upload_id: str, offset: int, data: Iterable[Buffer]) -> int:
        """Stream ``data`` into the upload at ``offset``; returns the new committed offset.

        An exception raised by ``data`` ends the stream cleanly (what was sent is kept) and is then
        re-raised as is.
        """
        return self._send(upload_id, offset, rechunk(data, self.chunk_bytes))

    def _send(self, upload_id: str, offset: int, chunks: Iterable[Buffer]) -> int:
        """One WriteChunks stream of ``chunks`` as they are (already cut to size)."""
        source_error: list[BaseException] = []

        def messages() -> Iterator[bytes]:
            framer = WriteFramer(upload_id, offset, checksum=self.checksum)
            try:
                for piece in chunks:
                    yield framer.frame(piece)
            except Exception as e:
                source_error.append(e)
            closing = framer.closing()
            if closing is not None:
                yield closing

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
        req = commit_request(upload_id, sha1=sha1, md5=md5, sha256=sha256, expected_size=expected_size)
        return BlobInfo.of(self._call(lambda: self.stub.CommitUpload(req, timeout=self.timeout)))

    def abort(self, upload_id: str) -> None:
        req = blob_pb2.AbortUploadRequest(upload_id=upload_id)
        self._call(lambda: self.stub.AbortUpload(req, timeout=self.timeout))

    def upload(
        self,
        data: Iterable[Buffer],
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
        """Create, write (resuming after transient failures) and commit; returns the blob.

        A failure that is not transient (or persists over the retries) cancels the upload and raises.
        """
        spec = UploadSpec(expected_size or 0, max_size, sha1, md5, sha256, ttl_seconds, label)
        handle = self.create_upload(spec)
        try:
            handle.write_resumably(data, resume_window)
            return handle.commit()
        except BaseException:
            with contextlib.suppress(BlobError):
                handle.cancel()
            raise

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
                        if not self.policy.may_repeat(err, failures):
                            raise err from None
                        if pos >= end:
                            return
                        time.sleep(self.policy.wait(failures))
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
        return bool(
            self._repeating(
                lambda: self._call(lambda: self.stub.DeleteBlob(req, timeout=self.timeout))
            ).existed
        )

    def delete_orphans(self, blob_ids: Iterable[str], *, strict: bool = False) -> None:
        """Delete blobs nothing references any more (after DeleteImage, a replaced file or icon).
        Best effort: a blob left behind is harmless garbage (logged), never a dangling reference;
        with ``strict``, an unreachable service or storage raises its :class:`BlobError`."""
        for blob_id in blob_ids:
            if not blob_id:
                continue
            try:
                self.delete(blob_id)
            except BlobError as e:
                orphan_not_deleted(blob_id, e, strict=strict)


class SyncUpload:
    """One upload in the blob service: write bytes into it, then commit or cancel it."""

    def __init__(self, client: BlobClient, info: UploadInfo) -> None:
        self.client = client
        self.info = info

    @property
    def upload_id(self) -> str:
        return self.info.upload_id

    def status(self) -> UploadInfo:
        """The upload as the service has it now (committed offset, expiry)."""
        self.info = self.client._repeating(lambda: self.client.get_upload(self.upload_id))
        return self.info

    def write(self, data: Iterable[Buffer], offset: int | None = None) -> int:
        """One WriteChunks stream at ``offset`` (default: the last known committed offset);
        returns the new committed offset. No retry: see :meth:`write_resumably`."""
        start = self.info.committed_offset if offset is None else offset
        return self.client.write(self.upload_id, start, data)

    def write_resumably(self, data: Iterable[Buffer], window: int | None = None) -> None:
        """Write all of ``data`` from offset 0, resuming from the committed offset after each
        transient failure (the policy's); the last ``window`` bytes sent are kept to resend."""
        client = self.client
        policy = client.policy
        uid = self.upload_id
        retained = Retained(window or self.info.checkpoint_bytes + IN_FLIGHT_BYTES)
        sent = 0  # offset of the next byte the source will give

        def from_source() -> Iterator[bytes | memoryview]:
            nonlocal sent
            for piece in rechunk(data, client.chunk_bytes):
                retained.add(sent, piece)
                sent += len(piece)
                yield piece

        source = from_source()
        resume = 0
        failures = 0
        while True:
            try:
                client._send(uid, resume, itertools.chain(retained.since(resume), source))
                return
            except BlobError as e:
                failures += 1
                if not policy.may_resume(e, failures):
                    raise
                time.sleep(policy.wait(failures))
                resume = self.resume_point(e)
                if resume > sent:
                    raise BlobError("Internal", f"upload {uid} is at {resume}, beyond {sent}") from e
                if resume < sent and (retained.start < 0 or resume < retained.start):
                    raise BlobError(
                        "Internal",
                        f"cannot resume upload {uid} at {resume}: bytes from "
                        f"{retained.start} only are retained",
                    ) from e

    def resume_point(self, err: BaseException | None = None) -> int:
        """Where to write again after ``err``: the offset a blob error names, else the service's
        committed offset (asked again after transport failures, per the policy)."""
        if isinstance(err, BlobError) and "current_offset" in err.metadata:
            return int(err.metadata["current_offset"])
        return self.status().committed_offset

    def commit(
        self,
        *,
        sha1: str | None = None,
        md5: str | None = None,
        sha256: str | None = None,
        expected_size: int = 0,
    ) -> BlobInfo:
        """Verify and store the bytes as a blob (repeated after transport failures)."""
        return self.client._repeating(
            lambda: self.client.commit(
                self.upload_id, sha1=sha1, md5=md5, sha256=sha256, expected_size=expected_size
            )
        )

    def cancel(self) -> None:
        """Drop the upload and its bytes."""
        self.client.abort(self.upload_id)
