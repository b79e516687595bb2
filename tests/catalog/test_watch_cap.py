"""Change-feed watchers are capped so they cannot take every handler thread of the catalog."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from imgapi.v1 import catalog_pb2

from catalog_service.settings import CatalogSettings
from imgapi_common.grpc_errors import from_rpc_error
from tests.catalog.conftest import V2, Catalog, caller, manifest, running_catalog


@pytest.fixture
def small_catalog(tmp_path: Path) -> Iterator[Catalog]:
    with running_catalog(
        f"sqlite:///{tmp_path}/c.db",
        "sqlite",
        mode="dc",
        data_dir=str(tmp_path),
        max_workers=4,
        max_watchers=2,
    ) as cat:
        yield cat


def _watch(cat: Catalog) -> Any:
    """A WatchChanges stream (an iterator of events that can be cancelled)."""
    return cat.stub.WatchChanges(catalog_pb2.WatchChangesRequest(after_cursor=0), timeout=60)


def test_watchers_beyond_the_cap_are_told_to_retry_and_other_calls_go_on(small_catalog: Catalog) -> None:
    cat = small_catalog
    first = cat.create(manifest())  # one change, so each watcher gets an event: it is being served
    watchers = [_watch(cat), _watch(cat)]
    for w in watchers:
        assert next(w).image_uuid == first["uuid"]
    with pytest.raises(grpc.RpcError) as exc:
        next(_watch(cat))
    err = from_rpc_error(exc.value)
    assert (exc.value.code(), err.code) == (grpc.StatusCode.UNAVAILABLE, "ServiceUnavailableError")  # type: ignore[attr-defined]
    # The handler threads left are free for everything else.
    for _ in range(5):
        got = cat.call("GetImage", uuid=first["uuid"], caller=caller(), view=V2, view_only=True)
        assert got.image.uuid == first["uuid"]
    cat.create(manifest())
    # A watcher that leaves frees its place.
    watchers[0].cancel()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert next(_watch(cat)).image_uuid == first["uuid"]
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline, "the cancelled watcher's place was not freed"
            time.sleep(0.2)
    watchers[1].cancel()


def test_watchers_must_leave_threads_for_other_calls() -> None:
    with pytest.raises(ValueError, match="max_watchers"):
        CatalogSettings(max_workers=4, max_watchers=4)
