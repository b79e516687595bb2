"""A tag filter few images carry drives the listing (the images carrying it are looked up and
sorted) instead of the ordered walk that probes every image (catalog_service/adapters/db/listing.py,
``with_driver``). Either way a listing answers the same pages, in the same order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from catalog_service.adapters.db.listing import ListQuery, with_driver
from tests.catalog.conftest import BACKENDS, SDC, Catalog, database, manifest, running_catalog
from tests.catalog.grpc_support import create_active, list_uuids, new_uuid

COMMON = 24  # images of the fresh owner carrying tag common=yes and billing tag "every"
RARE = 3  # of which these also carry rare=yes and billing tag "few"


@pytest.fixture(scope="module", params=BACKENDS)
def tagged(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Catalog, str]]:
    with (
        database(request.param, tmp_path_factory.mktemp("driver")) as url,
        running_catalog(url, request.param, mode="dc", admin_uuid=SDC) as cat,
    ):
        owner = new_uuid()
        for i in range(COMMON):
            rare = i % (COMMON // RARE) == 1
            tags: dict[str, Any] = {"common": "yes", **({"rare": "yes"} if rare else {})}
            billing = ["every", *(["few"] if rare else [])]
            create_active(cat, manifest(owner=owner, name=f"img-{i}", tags=tags, billing_tags=billing))
        # images of another owner without the tags: the walk has rows to pass over
        for i in range(6):
            create_active(cat, manifest(owner=new_uuid(), name=f"other-{i}"))
        yield cat, owner


def pages(cat: Catalog, limit: int, **params: Any) -> list[str]:
    """Every image of a listing, read ``limit`` at a time with markers (a marker is inclusive)."""
    out: list[str] = []
    marker = ""
    while True:
        page = list_uuids(cat, limit=str(limit), **({"marker": marker} if marker else {}), **params)
        fresh = page[1:] if marker else page
        out += fresh
        if len(page) < limit or not fresh:
            return out
        marker = page[-1]


@pytest.mark.parametrize(
    "params",
    [
        {"tags": {"common": "yes"}},
        {"tags": {"rare": "yes"}},
        {"tags": {"common": "yes", "rare": "yes"}},
        {"billing_tags": ["every"]},
        {"billing_tags": ["few"]},
        {"billing_tags": ["every", "few"], "tags": {"common": "yes"}},
    ],
)
@pytest.mark.parametrize("sort", ["", "published_at.desc"])
def test_same_pages_whichever_side_drives(
    tagged: tuple[Catalog, str], params: dict[str, Any], sort: str
) -> None:
    cat, owner = tagged
    everything = list_uuids(cat, state="all", limit="1000", **({"sort": sort} if sort else {}))
    rare = "rare" in params.get("tags", {}) or "few" in params.get("billing_tags", [])
    expected_count = RARE if rare else COMMON
    one_page = list_uuids(cat, owner=owner, limit="1000", **params, **({"sort": sort} if sort else {}))
    assert len(one_page) == expected_count
    assert one_page == [u for u in everything if u in set(one_page)]  # in listing order
    for limit in (2, 3, 5):  # a marker is inclusive: a page of 1 would never move on
        assert pages(cat, limit, owner=owner, **params, **({"sort": sort} if sort else {})) == one_page


def test_the_rarest_tag_drives_only_where_it_is_cheaper(tmp_path: Any) -> None:
    """The choice itself, on the SQLite database of a catalog: a tag drives when k * k < limit * N
    (k images carry it, N images in all)."""
    with (
        database("sqlite", tmp_path) as url,
        running_catalog(url, "sqlite", mode="dc", admin_uuid=SDC) as cat,
    ):
        for i in range(COMMON):
            rare = i % (COMMON // RARE) == 1
            tags: dict[str, Any] = {"common": "yes", **({"rare": "yes"} if rare else {})}
            cat.create(manifest(name=f"img-{i}", tags=tags, billing_tags=["few"] if rare else []))
        with cat.service.engine.connect() as conn:

            def driver(limit: int, **q: Any) -> Any:
                return with_driver(conn, ListQuery(limit=limit, **q), "sqlite").driver

            # N = 24: common (k=24) drives from limit 25 on (24 * 24 < 25 * 24); rare (k=3) from 1.
            assert driver(1, tags=(("common", "yes"),)) is None
            assert driver(24, tags=(("common", "yes"),)) is None
            assert driver(25, tags=(("common", "yes"),)) == ("common", "yes")
            assert driver(1, tags=(("common", "yes"), ("rare", "yes"))) == ("rare", "yes")
            assert driver(1, billing_tags=("few",), tags=(("common", "yes"),)) == (None, "few")
            assert driver(1, tags=(("missing", "x"),)) == ("missing", "x")  # no image: empty at once
            assert driver(1000) is None  # no tag filter
            assert with_driver(conn, ListQuery(limit=1, tags=(("rare", "yes"),)), "postgresql").driver is None
