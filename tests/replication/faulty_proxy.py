"""A TCP proxy on loopback that keeps dropping its connections (asyncio, in a thread).

Every connection is cut after a random byte budget, and every ``interval`` seconds all live
connections are cut (so idle streams such as a change feed break too).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading


class FaultyProxy:
    def __init__(
        self,
        upstream: str,
        *,
        interval: float = 0.7,
        budget: tuple[int, int] = (64 * 1024, 1024 * 1024),
        seed: int = 7,
    ) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.interval = interval
        self.budget = budget
        self.rng = random.Random(seed)
        self.drops = 0
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faulty-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._stopping = False

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultyProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        self._stopping = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._loop.create_task(self._chaos())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for w in list(self._writers):
                w.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:  # the chaos loop and open pipes: end them before the loop closes
                task.cancel()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _chaos(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval)
            if self._writers:
                self.drops += 1
            for w in list(self._writers):
                w.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        budget = [self.rng.randint(*self.budget)]
        pair = (writer, up_writer)
        self._writers.update(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    budget[0] -= len(data)
                    dst.write(data)
                    await dst.drain()
                    if budget[0] <= 0:
                        self.drops += 1
                        break
            except (ConnectionError, OSError):
                pass
            finally:
                for w in pair:
                    w.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers.difference_update(pair)
