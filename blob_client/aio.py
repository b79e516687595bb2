"""The asyncio blob client (the REST gateway): the same upload handle as :mod:`blob_client.sync` —
create, write, commit, cancel — over ``grpc.aio``, with the same framing and retry policy.

Every method raises :class:`~blob_client.errors.BlobError`. Bytes move with as few copies as the
sync client: a body is cut into 1 MiB chunks copied once into their request, and a download hands
out views of the received messages.

A download reads ahead by about one message, however slowly its consumer goes, provided its channel
was made with :data:`READ_WINDOW_OPTIONS`: :meth:`BlobReader.chunks` asks gRPC for the next message
only when the consumer (the gateway's HTTP response, which awaits each send) asks for the next chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc import aio
from imgapi.v1 import blob_pb2, blob_pb2_grpc

from blob_client.chunks import CHUNK_BYTES, FLUSH_SECONDS, Buffer, arechunk
from blob_client.errors import BlobError
from blob_client.model import BlobInfo, UploadInfo, UploadSpec, commit_request
from blob_client.policy import NO_RETRY, RetryPolicy, orphan_not_deleted
from blob_client.wire import READ_BLOB, WRITE_CHUNKS, WriteFramer, read_data

#: Options of a channel that downloads through :class:`BlobReader` on behalf of a slower consumer.
#: With BDP probing (gRPC's default) the C core grows each stream's receive window to its estimate
#: of the bandwidth-delay product and receives that much ahead of the application: tens of MiB per
#: download, more when the process is short of CPU (ping acknowledgements late, estimate high). Without
#: it the window stays at HTTP/2's 64 KiB and the core opens it for one message while a ``read()`` is
#: pending, so a download holds one message in the core, one being sent and the one in the HTTP
#: transport. ``bench/gateway/files.py`` was as fast as with the probe; a client that does nothing
#: but receive got about 11 % less (docs/performance.md). Uploads are unaffected (their window is
#: the blob service's).
READ_WINDOW_OPTIONS: tuple[tuple[str, int], ...] = (("grpc.http2.bdp_probe", 0),)

T = TypeVar("T")
Metadata = tuple[tuple[str, str], ...]
RawReadCall = aio.UnaryStreamCall[blob_pb2.ReadBlobRequest, bytes]


class AsyncBlobClient:
    """``timeout`` bounds ordinary calls, ``transfer_timeout`` the calls that move bytes (seconds).
    ``unary_channel``, when given, carries the unary calls (a caller hosted in the blob service's
    process passes an in-process channel); the streams of file bytes use ``channel``."""

    def __init__(
        self,
        channel: aio.Channel,
        *,
        unary_channel: aio.Channel | None = None,
        timeout: float | None = None,
        transfer_timeout: float | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        flush_seconds: float = FLUSH_SECONDS,
        checksum: bool = True,
        policy: RetryPolicy = NO_RETRY,
    ) -> None:
        self.stub: blob_pb2_grpc.BlobServiceAsyncStub = blob_pb2_grpc.BlobServiceStub(
            unary_channel or channel
        )  # type: ignore[assignment]
        self._write_chunks = channel.stream_unary(
            WRITE_CHUNKS, request_serializer=None, response_deserializer=blob_pb2.UploadStatus.FromString
        )
        self._read_blob = channel.unary_stream(
            READ_BLOB,
            request_serializer=blob_pb2.ReadBlobRequest.SerializeToString,
            response_deserializer=None,
        )
        self.timeout = timeout
        self.transfer_timeout = transfer_timeout
        self.chunk_bytes = chunk_bytes
        self.flush_seconds = flush_seconds
        self.checksum = checksum
        self.policy = policy

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except grpc.RpcError as e:
            raise BlobError.from_rpc_error(e) from None

    async def _repeating(self, make: Callable[[], Awaitable[T]]) -> T:
        failures = 0
        while True:
            try:
                return await self._call(make())
            except BlobError as e:
                failures += 1
                if not self.policy.may_repeat(e, failures):
                    raise
                await asyncio.sleep(self.policy.wait(failures))

    def _opts(self, metadata: Metadata, *, transfer: bool = False) -> dict[str, Any]:
        return {"timeout": self.transfer_timeout if transfer else self.timeout, "metadata": metadata}

    # --- uploads ----------------------------------------------------------------------------------

    async def create_upload(self, spec: UploadSpec, metadata: Metadata = ()) -> Upload:
        """Start an upload; the handle writes, commits or cancels it."""
        st = await self._call(self.stub.StartUpload(spec.request(), **self._opts(metadata)))
        return Upload(self, UploadInfo.of(st), metadata)

    async def put(self, spec: UploadSpec, data: Buffer, metadata: Metadata = ()) -> BlobInfo:
        """A small blob (at most :data:`~blob_client.wire.PUT_BLOB_MAX_BYTES`) in one call instead
        of three, checked as a commit is. Not repeated on failure: a repeat could store it twice."""
        req = blob_pb2.PutBlobRequest(spec=spec.request(), data=bytes(data))
        return BlobInfo.of(await self._call(self.stub.PutBlob(req, **self._opts(metadata, transfer=True))))

    async def upload_of(self, upload_id: str, metadata: Metadata = ()) -> Upload:
        """A handle on an upload started earlier (looked up: raises ``UploadNotFound``)."""
        handle = Upload(self, UploadInfo(upload_id, 0, 0, 0, "", 0), metadata)
        await handle.status()
        return handle

    # --- blobs ------------------------------------------------------------------------------------

    async def open(
        self, blob_id: str, offset: int = 0, length: int = 0, metadata: Metadata = ()
    ) -> BlobReader:
        """Start reading ``[offset, offset+length)`` (``length`` 0: to the end) and wait for the
        first message, so that a missing blob or a failed storage is an error here, not mid-stream."""
        req = blob_pb2.ReadBlobRequest(blob_id=blob_id, offset=offset, length=length)
        call: RawReadCall = self._read_blob(req, **self._opts(metadata, transfer=True))
        try:
            first = await self._call(call.read())
        except BaseException:
            call.cancel()
            raise
        if first is aio.EOF:  # type: ignore[attr-defined]
            return BlobReader(memoryview(b""), call)
        assert isinstance(first, bytes)
        return BlobReader(read_data(first), call)

    async def delete(self, blob_id: str, metadata: Metadata = ()) -> bool:
        req = blob_pb2.DeleteBlobRequest(blob_id=blob_id)
        res = await self._repeating(lambda: self.stub.DeleteBlob(req, **self._opts(metadata)))
        return bool(res.existed)

    async def delete_orphans(
        self, blob_ids: Iterable[str], metadata: Metadata = (), *, strict: bool = False
    ) -> None:
        """Delete blobs nothing references any more. Best effort: a blob left behind is harmless
        garbage (logged), never a dangling reference; with ``strict``, an unreachable service or
        storage raises its :class:`BlobError` (the caller reports that the store is down)."""
        for blob_id in blob_ids:
            if not blob_id:
                continue
            try:
                await self.delete(blob_id, metadata)
            except BlobError as e:
                orphan_not_deleted(blob_id, e, strict=strict)


@dataclass
class WriteOutcome:
    """Result of streaming a source into an upload."""

    committed_offset: int
    #: The source failed (client disconnect, remote error) after the bytes before it were kept.
    source_error: BaseException | None = None


class Upload:
    """One upload in the blob service: write bytes into it, then commit or cancel it."""

    def __init__(self, client: AsyncBlobClient, info: UploadInfo, metadata: Metadata = ()) -> None:
        self.client = client
        self.info = info
        self.metadata = metadata

    @property
    def upload_id(self) -> str:
        return self.info.upload_id

    async def status(self) -> UploadInfo:
        """The upload as the service has it now (committed offset, expiry)."""
        c = self.client
        req = blob_pb2.GetUploadRequest(upload_id=self.upload_id)
        st = await c._repeating(lambda: c.stub.GetUpload(req, **c._opts(self.metadata)))
        self.info = UploadInfo.of(st)
        return self.info

    async def write(self, source: AsyncIterator[Buffer], offset: int | None = None) -> WriteOutcome:
        """Stream ``source`` (cut into chunks) into the upload at ``offset`` (default: the last
        known committed offset).

        A failing source ends the stream normally, so the service keeps what it received (the
        upload can resume from there); the failure is returned in :attr:`WriteOutcome.source_error`.
        """
        c = self.client
        start = self.info.committed_offset if offset is None else offset
        failure: list[BaseException] = []

        async def requests() -> AsyncGenerator[bytes, None]:
            framer = WriteFramer(self.upload_id, start, checksum=c.checksum)
            try:
                async for data in arechunk(source, c.chunk_bytes, c.flush_seconds):
                    yield framer.frame(data)  # the chunk's one copy, into its request
            except Exception as e:  # a client disconnect, a remote source failing...
                failure.append(e)
            closing = framer.closing()
            if closing is not None:
                yield closing

        call = c._write_chunks(**c._opts(self.metadata, transfer=True))
        writer = asyncio.ensure_future(_send_all(call, requests()))
        # The service may end the stream early (a full disk, a wrong offset) while a write is in
        # flight. grpc.aio then replaces the call's status with INTERNAL "Internal error from Core"
        # if it notices the failed write after the status arrived (its ``_write``, grpcio 1.85), and
        # the reason is lost. Cancelling the writer the moment the status is set means a late failed
        # write is never noticed: the status stays the service's.
        call.add_done_callback(lambda _call: _stop(writer))
        try:
            st = await c._call(call)
        except BlobError:
            if not failure:
                raise
            try:
                done = (await self.status()).committed_offset
            except BlobError:
                done = start
            return WriteOutcome(done, failure[0])
        except BaseException:
            call.cancel()
            raise
        finally:
            await asyncio.gather(writer, return_exceptions=True)
        self.info = UploadInfo.of(st)
        return WriteOutcome(st.committed_offset, failure[0] if failure else None)

    async def commit(self) -> BlobInfo:
        """Verify (against the :class:`UploadSpec`'s digests and size) and store the bytes as a blob."""
        c = self.client
        req = commit_request(self.upload_id)
        return BlobInfo.of(
            await c._repeating(lambda: c.stub.CommitUpload(req, **c._opts(self.metadata, transfer=True)))
        )

    async def cancel(self) -> None:
        """Drop the upload and its bytes."""
        c = self.client
        req = blob_pb2.AbortUploadRequest(upload_id=self.upload_id)
        await c._call(c.stub.AbortUpload(req, **c._opts(self.metadata)))


def _stop(task: asyncio.Future[None]) -> None:
    task.cancel()


async def _send_all(call: Any, requests: AsyncGenerator[bytes, None]) -> None:
    """Write ``requests`` into a client-streaming call, then half-close it. Stops quietly when the
    call has ended (its status, which the caller awaits, says why)."""
    try:
        async for request in requests:
            await call.write(request)
        await call.done_writing()
    except (asyncio.InvalidStateError, grpc.RpcError):
        pass
    except BaseException:
        call.cancel()  # a failure of our own (or a cancellation): end the call too
        raise
    finally:
        await requests.aclose()


class BlobReader:
    """An open ReadBlob stream; :meth:`chunks` hands out views of the received messages."""

    def __init__(self, first: memoryview, call: RawReadCall) -> None:
        self.first = first
        self.call = call

    async def chunks(self) -> AsyncIterator[memoryview]:
        """The bytes, message by message; the stream ends (is cancelled) when the reader stops."""
        call = self.call
        try:
            if self.first:
                yield self.first
            while True:  # read() only: iteration and read() cannot be mixed on one call
                raw = await call.read()
                if raw is aio.EOF:  # type: ignore[attr-defined]
                    break
                assert isinstance(raw, bytes)
                data = read_data(raw)
                if data:
                    yield data
        finally:
            call.cancel()

    def close(self) -> None:
        self.call.cancel()
