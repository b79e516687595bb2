"""The blob service ends an upload's WriteChunks stream early (a full disk, a wrong offset) while
the asynchronous client is still writing: the client must report the service's reason.

grpc.aio replaces such a call's status with INTERNAL "Internal error from Core" when it notices
the failed in-flight write after the status arrived, a race that went the wrong way in a few
few calls in a thousand (more on a loaded machine) before :meth:`blob_client.aio.Upload.write` stopped its
writer the moment the status is set. The race cannot be forced, so the test repeats the call
enough times that the old client failed it in every run (one to three calls in 400, unloaded).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent import futures

import grpc
import pytest
from grpc_status import rpc_status

from blob_client import AsyncBlobClient, BlobError
from blob_client.aio import Upload
from blob_client.model import UploadInfo
from blob_client.wire import WRITE_CHUNKS
from imgapi_common.internal_auth import InternalAuthInterceptor, aio_channel

TOKEN = "t" * 32
CALLS = 400
CHUNK = 256 * 1024


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    """A server whose WriteChunks fails with the blob service's packed InsufficientStorage status
    after the first message, while the client is still sending."""

    def write_chunks(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        next(requests)
        full = BlobError("InsufficientStorage", "storage full: [Errno 28] No space left on device")
        context.abort_with_status(rpc_status.to_status(full.to_rpc_status()))
        raise AssertionError("abort returns no more")  # pragma: no cover

    service, method = WRITE_CHUNKS.strip("/").split("/")
    server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=[InternalAuthInterceptor(TOKEN)])
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                service, {method: grpc.stream_unary_rpc_method_handler(write_chunks)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


async def _body() -> AsyncIterator[bytes]:
    for _ in range(16):
        yield b"x" * CHUNK


async def _reasons(target: str) -> dict[str, int]:
    channel = aio_channel(target, TOKEN)
    client = AsyncBlobClient(channel, timeout=10, transfer_timeout=10, chunk_bytes=CHUNK)
    seen: dict[str, int] = {}
    try:
        for _ in range(CALLS):
            upload = Upload(client, UploadInfo("u" * 32, 0, 0, 0, "", 0))
            with pytest.raises(BlobError) as ei:
                await upload.write(_body())
            key = f"{ei.value.reason}: {ei.value.message}"
            seen[key] = seen.get(key, 0) + 1
    finally:
        await channel.close(None)
    return seen


def test_the_services_reason_survives_an_early_end(target: str) -> None:
    seen = asyncio.run(_reasons(target))
    assert seen == {"InsufficientStorage: storage full: [Errno 28] No space left on device": CALLS}
