"""Rendered ListImages answers, reused while the catalog has not changed.

A listing depends on the query (every argument of the call: filters, caller, view) and on the
stored images. Each call reads a token naming the state of the database (catalog_service/adapters/db/version.py:
the change feed's latest cursor on SQLite, the current snapshot on PostgreSQL; one cheap statement)
and serves a stored answer only when both the query and the token match. The check is against the
database, not a message from another process, so a write through any catalog process (or any
gateway replica in front of them) is seen by the very next listing through every other one:
read-your-writes holds across replicas. The token is read *before* the query runs, so an answer
that raced a write is stored under the older token, which never comes back: it only ever misses.

Bounded by the size of the answers it holds (``IMGAPI_CATALOG_LIST_CACHE_BYTES``; least recently
used first out). A change of ``mode`` or channels between starts re-evaluates validity without a
feed entry; it happens at start-up, before this process serves (and its cache is empty). The
version handed to callers (:class:`Listing`) carries a tag of that configuration too.

A caller that keeps answers itself (the gateway keeps rendered REST answers) sends the version of
the answer it has (``if_version``) and gets no images back while the data is still at it.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import Connection

from catalog_service.adapters.db.version import data_version
from catalog_service.domain.calls import Rendered
from catalog_service.domain.config import DomainConfig


class _UnitOfWork(Protocol):
    def read(self) -> AbstractContextManager[Connection]: ...


class _Lister(Protocol):
    @property
    def uow(self) -> _UnitOfWork: ...

    @property
    def list_cache(self) -> ListCache: ...

    @property
    def cfg(self) -> DomainConfig: ...


#: What a listing answers: its images, or its page as one JSON array text.
Answer = list[Rendered] | str
A = TypeVar("A", list[Rendered], str)


def _cost(answer: Sequence[Rendered] | str) -> int:
    """Rough bytes held: the view texts, and (when full records were asked for) their dicts."""
    if isinstance(answer, str):
        return 200 + len(answer)
    n = 200 * len(answer)
    for r in answer:
        n += len(r.view_json) + len(r.etag)
        if len(r.record) > 1:
            n += 4 * len(r.view_json)
    return n


class ListCache:
    """LRU of ``key -> (data version, answer)`` holding at most ``max_bytes`` of answers."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[str, Answer, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, version: str) -> Answer | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[0] != version:
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, key: Hashable, version: str, answer: Answer) -> None:
        cost = _cost(answer)
        if cost > self.max_bytes // 4:  # one answer may not push out everything else
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[key] = (version, answer, cost)
            self._bytes += cost
            while self._bytes > self.max_bytes:
                _, (_, _, c) = self._entries.popitem(last=False)
                self._bytes -= c


def _frozen(value: Any) -> Hashable:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Listing(Generic[A]):
    """One ListImages answer and the version of the data it was read at."""

    #: ``data_version`` and the configuration's tag.
    version: str
    #: The images or the page text; None: the data is still at the caller's ``if_version`` (the
    #: caller has the answer).
    answer: A | None


@functools.cache
def config_tag(cfg: DomainConfig) -> str:
    """Part of every version: a catalog restarted with another mode or other channels changes what
    a listing shows without a change-feed entry, and catalogs configured alike agree."""
    return hashlib.sha1(repr(cfg).encode()).hexdigest()[:12]


def listing(
    lister: _Lister,
    method: Callable[..., A],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    if_version: str = "",
) -> Listing[A]:
    """``method(lister, *args, **kwargs)`` (a ListImages handler), from the lister's
    ``list_cache`` when neither its arguments nor the data changed since it was computed; nothing
    at all when the data is still at ``if_version``."""
    cache = lister.list_cache
    with lister.uow.read() as conn:
        version = f"{data_version(conn)}/{config_tag(lister.cfg)}"
    if if_version == version:
        return Listing(version, None)
    if cache.max_bytes <= 0:
        return Listing(version, method(lister, *args, **kwargs))
    # The method is part of the key: the images and the page text of one query are two answers.
    key = (method.__name__, _frozen(args), _frozen(kwargs))
    hit = cache.get(key, version)
    if hit is None:
        fresh = method(lister, *args, **kwargs)
        cache.put(key, version, fresh)
        return Listing(version, fresh)
    return Listing(version, cast("A", hit))  # stored by this method (the key says so): its type
