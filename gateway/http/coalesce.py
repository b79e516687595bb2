"""One ``send()`` per small response instead of two.

uvicorn writes a response's status line and headers when the app sends ``http.response.start``
and its body at ``http.response.body``: two system calls for every small answer, and on a loopback
or LAN connection each costs about as much CPU as the rest of a GetImage in the gateway. The app
sends both in the same turn of the event loop, so holding small writes until the end of that turn
joins them into one. Large writes (file downloads, long listings) go straight through, after
whatever is held, so they are never copied.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

#: Writes below this size are held until the end of the event-loop turn; larger ones are not copied.
HOLD_BELOW = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """Wraps a connection's transport; every method but ``write`` passes through (``close`` and
    ``write_eof`` send what is held first, ``abort`` drops it)."""

    def __init__(self, transport: asyncio.BaseTransport, loop: asyncio.AbstractEventLoop) -> None:
        # uvloop's transports implement asyncio.Transport without deriving from it.
        transport = cast(asyncio.Transport, transport)
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes | bytearray | memoryview] = []
        self._held_bytes = 0

    # --- writes -------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        size = len(data)
        if size >= HOLD_BELOW:
            self.flush()
            self._transport.write(data)
            return
        if not size:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data) if isinstance(data, memoryview) else data)
        self._held_bytes += size
        if self._held_bytes >= HOLD_BELOW:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held now (a no-op when nothing is)."""
        if not self._held:
            return
        held = self._held
        self._held = []
        self._held_bytes = 0
        if self._transport.is_closing():
            return
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    # --- the rest passes through ----------------------------------------------------------------

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._held_bytes = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()
