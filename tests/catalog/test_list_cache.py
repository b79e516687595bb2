"""ListImages answers are reused only while the database is unchanged (catalog_service/adapters/list_cache.py).

Two catalog servers share one database, as replicas behind a load balancer do: each keeps its own
cache, and a write through one is seen by the very next listing through the other, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog_service.domain.calls import Caller, View
from tests.catalog.conftest import BACKENDS, SDC, Catalog, caller, database, manifest, running_catalog
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
    query = {"caller": Caller(), "view": View(), "name": "cached"}
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
        q = {"caller": Caller(), "view": View()}
        assert cat.service.list_images(**q) is not cat.service.list_images(**q)
