"""gateway/http/coalesce.py over a real loopback connection (uvloop, as the gateway runs): small
writes made in one turn of the event loop reach the socket as one write, in order; large ones are
not held; close() sends what is held, abort() drops it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from gateway.http.coalesce import HOLD_BELOW, CoalescingTransport


class _Counting:
    """The real transport, with a record of the writes that reach it."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


Scenario = Callable[[CoalescingTransport], Awaitable[None]]


def _run(scenario: Scenario) -> tuple[list[bytes], bytes]:
    """Run ``scenario`` on a coalescing transport; return the writes that reached the socket and
    every byte the peer received until the connection closed."""

    async def main() -> tuple[list[bytes], bytes]:
        received = asyncio.get_running_loop().create_future()

        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.set_result(await reader.read())
            writer.close()

        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        raw, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        counting = _Counting(raw)
        transport = CoalescingTransport(counting, loop)  # type: ignore[arg-type]
        await scenario(transport)
        data = await asyncio.wait_for(received, 10)
        server.close()
        return counting.writes, data

    return uvloop.run(main())


def test_small_writes_of_one_turn_are_one_write() -> None:
    async def scenario(t: CoalescingTransport) -> None:
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        t.write(memoryview(b"hello"))
        assert t.get_write_buffer_size() >= 5  # held, and counted as buffered
        await asyncio.sleep(0)  # the end of the turn
        t.write(b"next")
        t.close()

    writes, data = _run(scenario)
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", b"next"]
    assert data == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhellonext"


def test_large_writes_go_straight_through_after_what_is_held() -> None:
    big = bytes(range(256)) * (HOLD_BELOW // 256 + 1)

    async def scenario(t: CoalescingTransport) -> None:
        t.write(b"head")
        t.write(big)
        t.write(b"tail")
        t.close()  # sends the held tail first

    writes, data = _run(scenario)
    assert writes == [b"head", big, b"tail"]
    assert data == b"head" + big + b"tail"


def test_held_bytes_past_the_limit_are_sent_at_once() -> None:
    part = b"x" * (HOLD_BELOW // 2)

    async def scenario(t: CoalescingTransport) -> None:
        t.write(part)
        t.write(part)  # reaches the limit: sent now, not at the end of the turn
        t.write(b"!")
        t.close()

    writes, data = _run(scenario)
    assert writes == [part + part, b"!"]
    assert data == part + part + b"!"


def test_abort_drops_what_is_held() -> None:
    async def scenario(t: CoalescingTransport) -> None:
        t.write(b"sent")
        await asyncio.sleep(0)
        t.write(b"dropped")
        t.abort()

    writes, data = _run(scenario)
    assert writes == [b"sent"]
    assert data == b"sent"
