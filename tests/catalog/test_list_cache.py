"""ListImages answers are reused only while the database is unchanged (catalog_service/adapters/list_cache.py).

Two catalog servers share one database, as replicas behind a load balancer do: each keeps its own
cache, and a write through one is seen by the very next listing through the other, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog_service.domain.calls import Caller, View
from tests.catalog.conftest import (
    BACKENDS,
    SDC,
    V2,
    VADER,
    Catalog,
    caller,
    database,
    manifest,
    running_catalog,
)
from tests.catalog.grpc_support import activate, list_images, update


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Catalog, Catalog]]:
    with (
        database(request.param, tmp_path) as url,
        running_catalog(url, request.param, mode="dc", admin_uuid=SDC) as a,
        running_catalog(url, request.param, mode="dc", admin_uuid=SDC, auto_migrate=False) as b,
    ):
        yield a, b


def names(cat: Catalog, **kw: str) -> dict[str, str]:
    return {i["uuid"]: i.get("description", "") for i in list_images(cat, **kw)}


def test_writes_through_one_replica_are_listed_at_once_through_the_other(
    pair: tuple[Catalog, Catalog],
) -> None:
    a, b = pair
    first = a.create(manifest(name="first", description="one"))
    activate(a, first["uuid"])
    for _ in range(3):  # b answers (and caches) the same listings several times
        assert names(b) == {first["uuid"]: "one"}
        assert names(b, name="second") == {}

    second = a.create(manifest(name="second", description="two"))
    assert names(b, state="all") == {first["uuid"]: "one", second["uuid"]: "two"}
    assert names(b) == {first["uuid"]: "one"}  # created, not yet active
    activate(a, second["uuid"])
    assert names(b) == {first["uuid"]: "one", second["uuid"]: "two"}
    assert names(b, name="second") == {second["uuid"]: "two"}

    update(a, first["uuid"], {"description": "changed"})
    assert names(b) == {first["uuid"]: "changed", second["uuid"]: "two"}
    a.call("DeleteImage", caller=caller(), uuid=second["uuid"])
    assert names(b) == {first["uuid"]: "changed"}
    assert names(b, name="second") == {}


def test_an_unchanged_catalog_answers_from_the_cache(pair: tuple[Catalog, Catalog]) -> None:
    a, b = pair
    activate(a, a.create(manifest(name="cached"))["uuid"])
    query: dict[str, Any] = {"caller": Caller(), "view": View(), "name": "cached"}
    first = b.service.list_images(**query)
    assert b.service.list_images(**query) is first  # the stored answer itself
    assert b.service.list_images(**(query | {"name": "other"})) is not first
    update(a, first[0].record["uuid"], {"description": "new"})
    again = b.service.list_images(**query)
    assert again is not first and '"description":"new"' in again[0].view_json.replace(" ", "")


def test_a_zero_budget_turns_the_cache_off(tmp_path: Path) -> None:
    with (
        database("sqlite", tmp_path) as url,
        running_catalog(url, "sqlite", mode="dc", admin_uuid=SDC, list_cache_bytes=0) as cat,
    ):
        activate(cat, cat.create(manifest(name="uncached"))["uuid"])
        q: dict[str, Any] = {"caller": Caller(), "view": View()}
        assert cat.service.list_images(**q) is not cat.service.list_images(**q)


def _listing(cat: Catalog, version: str = "", **kw: Any) -> Any:
    return cat.call("ListImages", caller=caller(), view=V2, view_only=True, if_data_version=version, **kw)


def test_a_caller_holding_the_current_version_gets_no_images(pair: tuple[Catalog, Catalog]) -> None:
    """The conditional ListImages the gateway revalidates its kept answers with: "unchanged"
    exactly while no write happened, through either replica; both replicas name the same data
    with the same version."""
    a, b = pair
    activate(a, a.create(manifest(name="versioned"))["uuid"])
    first = _listing(b, name="versioned")
    assert first.data_version and not first.unchanged and len(first.images) == 1
    assert _listing(a, name="versioned").data_version == first.data_version
    again = _listing(b, first.data_version, name="versioned")
    assert again.unchanged and list(again.images) == [] and again.data_version == first.data_version
    assert _listing(a, first.data_version, name="versioned").unchanged  # the other replica agrees
    assert not _listing(b, "0/not-a-version", name="versioned").unchanged

    update(a, first.images[0].uuid, {"description": "changed"})
    after = _listing(b, first.data_version, name="versioned")
    assert not after.unchanged and after.data_version != first.data_version
    assert '"description":"changed"' in after.images[0].view_json


def test_the_version_names_the_configuration_too(tmp_path: Path) -> None:
    """Catalogs configured differently on one database answer with different versions (a restart
    with other channels or another mode changes what a listing shows without a feed entry)."""
    with (
        database("sqlite", tmp_path) as url,
        running_catalog(url, "sqlite", mode="dc", admin_uuid=SDC) as a,
        running_catalog(url, "sqlite", mode="dc", admin_uuid=VADER, auto_migrate=False) as b,
    ):
        va, vb = _listing(a).data_version, _listing(b).data_version
        assert va.split("/")[0] == vb.split("/")[0] and va != vb
        assert not _listing(b, va).unchanged


def test_conditional_listing_without_the_cache(tmp_path: Path) -> None:
    with (
        database("sqlite", tmp_path) as url,
        running_catalog(url, "sqlite", mode="dc", admin_uuid=SDC, list_cache_bytes=0) as cat,
    ):
        first = _listing(cat)
        assert first.data_version and _listing(cat, first.data_version).unchanged
        activate(cat, cat.create(manifest(name="new"))["uuid"])
        assert not _listing(cat, first.data_version).unchanged
