"""Rendered ListImages answers kept by the gateway, revalidated with the catalog on every request.

A warm listing used to cost the catalog one protobuf message per image and the gateway the
re-indentation of every image: most of a 1000-image page, although nothing had changed. The
gateway now keeps the REST body it sent, with the ``data_version`` the catalog answered with, and
asks again with ``if_data_version``: while the catalog's data is still at that version, the catalog
answers ``unchanged`` (one cheap statement, no images) and the gateway sends the body it has. Any
write since, through any catalog or gateway replica, changes the version: read-your-writes holds,
as without the cache (see catalog_service/adapters/list_cache.py for what the version is).

Keyed by the whole ListImages request (filters, caller, view, page) and by what the gateway itself
decides (the empty-filter answer); bounded by the bytes of the bodies it holds (least recently used
out first, ``IMGAPI_GATEWAY_LIST_CACHE_BYTES``; 0 turns it off).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from imgapi.v1 import catalog_pb2


@dataclass(frozen=True)
class Answer:
    version: str
    body: bytes


class ListAnswers:
    """LRU of ``request key -> Answer`` holding at most ``max_bytes`` of bodies (the event loop's
    thread only: no lock)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, Answer] = OrderedDict()
        self._bytes = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @staticmethod
    def key(request: catalog_pb2.ListImagesRequest, *extra: bool) -> bytes:
        """The key of a request (before ``if_data_version`` is set) and of the gateway's own choices.
        The caller's request id and user agent travel for logs only: they are not part of it."""
        keyed = catalog_pb2.ListImagesRequest()
        keyed.CopyFrom(request)
        keyed.caller.ClearField("request_id")
        keyed.caller.ClearField("user_agent")
        flags = bytes(int(x) for x in extra)
        return flags + b"|" + keyed.SerializeToString(deterministic=True)

    def get(self, key: bytes) -> Answer | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def put(self, key: bytes, answer: Answer) -> None:
        cost = _cost(key, answer)
        if not answer.version or cost > self.max_bytes // 4:  # one answer may not push out everything
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= _cost(key, old)
        self._entries[key] = answer
        self._bytes += cost
        while self._bytes > self.max_bytes:
            self._bytes -= _cost(*self._entries.popitem(last=False))


def _cost(key: bytes, answer: Answer) -> int:
    """Bytes an entry holds, roughly (the body, its key and version, the objects around them)."""
    return len(answer.body) + len(key) + len(answer.version) + 200
