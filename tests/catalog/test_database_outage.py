"""The catalog across a PostgreSQL restart: reads recover by themselves, nothing answers 500.

"Restart" is simulated the way PostgreSQL itself ends sessions: pg_terminate_backend on every
connection the catalog holds (what a restart or a failover does to them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.catalog.conftest import V2, Catalog, caller, manifest, running_catalog
from tests.components import pg_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_catalog(tmp_path: Path) -> Iterator[tuple[Catalog, str]]:
    with pg_database() as url, running_catalog(url, "postgres", mode="dc", data_dir=str(tmp_path)) as cat:
        yield cat, url


def _drop_catalog_connections(url: str) -> int:
    """End every session on the catalog's database (from the maintenance database)."""
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            return len(
                c.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                    {"db": make_url(url).database},
                ).all()
            )
    finally:
        admin.dispose()


def test_reads_survive_the_database_dropping_every_connection(pg_catalog: tuple[Catalog, str]) -> None:
    cat, url = pg_catalog
    img = cat.create(manifest())
    for _ in range(3):  # several pooled connections
        cat.call("GetImage", uuid=img["uuid"], caller=caller(), view=V2, view_only=True)
        cat.call("ListImages", caller=caller(), view=V2)
    assert _drop_catalog_connections(url) >= 1
    got = cat.call("GetImage", uuid=img["uuid"], caller=caller(), view=V2, view_only=True)
    assert json.loads(got.image.view_json)["uuid"] == img["uuid"]
    assert _drop_catalog_connections(url) >= 1
    listed = cat.call("ListImages", caller=caller(), view=V2, state="all")
    assert img["uuid"] in [json.loads(i.view_json)["uuid"] for i in listed.images]


def test_a_write_on_a_dead_connection_is_503_not_500_and_the_next_one_works(
    pg_catalog: tuple[Catalog, str],
) -> None:
    cat, url = pg_catalog
    cat.create(manifest())  # leaves a connection in the pool
    assert _drop_catalog_connections(url) >= 1
    # The write checks out that dead pooled connection: writes are not retried (a lost COMMIT is
    # ambiguous), so the caller gets a clean 503 and nothing is stored.
    e = cat.error("CreateImage", caller=caller(), manifest_json=json.dumps(manifest(name="after-restart")))
    assert (e.code, e.message, e.http_status) == ("ServiceUnavailableError", "service unavailable", 503)
    listed = cat.call("ListImages", caller=caller(), view=V2, state="all", name="after-restart")
    assert list(listed.images) == []
    again = cat.create(manifest(name="after-restart-2"))
    assert again["name"] == "after-restart-2"


def _allow_connections(url: str, allow: bool) -> None:
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}'))
    finally:
        admin.dispose()


def test_a_database_that_stays_down_is_503_then_service_resumes(pg_catalog: tuple[Catalog, str]) -> None:
    cat, url = pg_catalog
    img = cat.create(manifest())
    _allow_connections(url, False)
    try:
        _drop_catalog_connections(url)
        for method, fields in (
            ("GetImage", {"uuid": img["uuid"], "view_only": True}),
            ("ListImages", {}),
            ("CreateImage", {"manifest_json": json.dumps(manifest())}),
        ):
            e = cat.error(method, caller=caller(), view=V2, **fields)
            assert (e.code, e.message) == ("ServiceUnavailableError", "service unavailable"), method
    finally:
        _allow_connections(url, True)
    got = cat.call("GetImage", uuid=img["uuid"], caller=caller(), view=V2, view_only=True)
    assert json.loads(got.image.view_json)["uuid"] == img["uuid"]
