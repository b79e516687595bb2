"""The blob service's unary calls through its in-process channel (blob_service.api.local), as the
embedded stack's gateway makes them: the same answers and errors as over its port, on the local
directory and S3, and uploads that mix both transports (start and commit in-process, the bytes
streamed over the port) land in the one service."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from grpc import aio

from blob_client import AsyncBlobClient, BlobError, UploadSpec
from blob_client.wire import PUT_BLOB_MAX_BYTES
from blob_service.api.local import local_channel
from blob_service.handlers.operations import BlobService
from imgapi_common.grpc_server import MAX_MESSAGE_BYTES

_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def _both(
    server: tuple[int, BlobService], fn: Callable[[AsyncBlobClient, AsyncBlobClient], Awaitable[Any]]
) -> Any:
    """``fn(over the port, in-process unary calls)`` on one event loop."""
    port, service = server

    async def run() -> Any:
        async with aio.insecure_channel(f"127.0.0.1:{port}", options=_OPTIONS) as ch:
            local = local_channel(service)
            assert not local.on_caller_thread  # file writes never run on the caller's loop
            try:
                return await fn(AsyncBlobClient(ch), AsyncBlobClient(ch, unary_channel=local))
            finally:
                await local.close()

    return asyncio.run(run())


async def _read(client: AsyncBlobClient, blob_id: str) -> bytes:
    reader = await client.open(blob_id)
    return b"".join([bytes(c) async for c in reader.chunks()])


def test_a_put_in_process_is_read_over_the_port(server: tuple[int, BlobService]) -> None:
    data = b"small image file \x00\xff" * 100

    async def go(net: AsyncBlobClient, mixed: AsyncBlobClient) -> None:
        spec = UploadSpec(expected_size=len(data), sha1=hashlib.sha1(data).hexdigest())
        via_port, in_process = await net.put(spec, data), await mixed.put(spec, data)
        same = ("size", "sha1", "md5", "sha256", "content_md5", "stor")
        assert [getattr(in_process, k) for k in same] == [getattr(via_port, k) for k in same]
        assert in_process.blob_id != via_port.blob_id
        assert await _read(net, in_process.blob_id) == data

    _both(server, go)


def test_refusals_are_the_same_errors(server: tuple[int, BlobService]) -> None:
    """A wrong digest, a size mismatch, a body above PutBlob's limit: the same BlobError, and nothing
    stored by either."""
    data = b"x" * 1000
    cases = [
        (UploadSpec(sha1="0" * 40), data),
        (UploadSpec(expected_size=999), data),
        (UploadSpec(), b"y" * (PUT_BLOB_MAX_BYTES + 1)),
    ]

    async def go(net: AsyncBlobClient, mixed: AsyncBlobClient) -> list[tuple[BlobError, BlobError]]:
        out = []
        for spec, body in cases:
            errors = []
            for client in (net, mixed):
                with pytest.raises(BlobError) as ei:
                    await client.put(spec, body)
                errors.append(ei.value)
            out.append((errors[0], errors[1]))
        return out

    pairs = _both(server, go)
    for via_port, in_process in pairs:
        assert (in_process.reason, in_process.message) == (via_port.reason, via_port.message)
    assert [p.reason for p, _ in pairs] == ["DigestMismatch", "SizeMismatch", "InvalidRequest"]


def test_an_upload_started_and_committed_in_process_streamed_over_the_port(
    server: tuple[int, BlobService],
) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: above PutBlob's limit, so an upload

    async def source() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 256 * 1024):
            yield data[i : i + 256 * 1024]

    async def go(net: AsyncBlobClient, mixed: AsyncBlobClient) -> None:
        upload = await mixed.create_upload(
            UploadSpec(expected_size=len(data), md5=hashlib.md5(data).hexdigest())
        )
        await upload.write(source())
        info = await upload.commit()
        assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
        assert await _read(net, info.blob_id) == data

    _both(server, go)
