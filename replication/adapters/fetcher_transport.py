"""The :class:`replication.adapters.rest_source.RestTransport` of import jobs.

The copier runs in a worker thread and reads its source synchronously; the SSRF-safe fetcher
(:mod:`imgapi_common.fetch`: policy, allow-list, size and time limits) is asynchronous. This
transport runs each GET on the import runner's event loop and hands the answer (or the streamed
body, through a small queue) to the copier's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

from imgapi_common.fetch import FetchBlocked, FetchError, FetchTooLarge
from imgapi_common.remote_imgapi import MANIFEST_LIMIT, Remote, source_url
from replication.adapters.rest_source import HttpReply
from replication.adapters.sources import SourceError

T = TypeVar("T")


class FetcherTransport:
    """GETs of ``remote`` on ``loop``, called from another thread. ``stopped`` (the job is being
    cancelled) or a closed loop ends a wait with a non-transient :class:`SourceError`, so the
    worker thread never hangs."""

    def __init__(
        self,
        remote: Remote,
        loop: asyncio.AbstractEventLoop,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.remote = remote
        self.loop = loop
        self.stopped = stopped

    def close(self) -> None:
        pass

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.loop.is_closed():
            coro.close()
            raise SourceError("the service is shutting down", transient=False)
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        while True:
            try:
                return fut.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                if self.stopped() or self.loop.is_closed() or not self.loop.is_running():
                    fut.cancel()
                    raise SourceError("import job stopped", transient=False) from None

    @staticmethod
    def _error(path: str, e: FetchError) -> SourceError:
        transient = not isinstance(e, FetchBlocked | FetchTooLarge)
        return SourceError(f"GET {path}: {e.message}", transient=transient)

    def get(self, path: str, params: Mapping[str, str] | None = None) -> HttpReply:
        url = source_url(self.remote.source, path.lstrip("/"), params)

        async def go() -> HttpReply:
            async with self.remote.fetcher.open(url, headers={"Accept-Version": "*"}) as r:
                return HttpReply(r.status_code, await r.read(MANIFEST_LIMIT), dict(r.headers))

        try:
            return self._run(go())
        except FetchError as e:
            raise self._error(path, e) from None

    @contextlib.contextmanager
    def stream(self, path: str) -> Iterator[tuple[int, Iterator[bytes]]]:
        """One task on the loop reads the response into a small queue the thread drains."""
        url = source_url(self.remote.source, path.lstrip("/"))
        q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=4)

        async def produce() -> None:
            try:
                async with self.remote.file_fetcher.open(url, headers={"Accept-Version": "*"}) as r:
                    await q.put(("status", r.status_code))
                    if r.status_code == 200:
                        async for chunk in r.iter_bytes():
                            await q.put(("data", chunk))
                await q.put(("end", None))
            except FetchError as e:
                await q.put(("error", self._error(path, e)))

        task = asyncio.run_coroutine_threadsafe(produce(), self.loop)

        def take() -> tuple[str, Any]:
            item = self._run(q.get())
            if item[0] == "error":
                raise item[1]
            return item

        def chunks() -> Iterator[bytes]:
            while True:
                kind, value = take()
                if kind != "data":
                    return
                yield value

        try:
            kind, status = take()
            yield (status if kind == "status" else 599), chunks()
        finally:
            task.cancel()
