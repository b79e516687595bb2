"""An update writes only the indexed columns that change (SQLite then leaves the other indexes
alone); the stored row must still equal the full row of the record after every kind of write."""

from __future__ import annotations

from sqlalchemy import select

from catalog_service.adapters.db.rows import indexed_columns
from catalog_service.adapters.db.schema import images
from tests.catalog.conftest import Catalog, caller, manifest
from tests.catalog.grpc_support import activate, get, update


def _check(cat: Catalog, uuid: str) -> None:
    with cat.service.engine.connect() as conn:
        stored = cat.service.repo.get(conn, uuid)
        row = conn.execute(select(images).where(images.c.uuid == uuid)).mappings().one()
    assert stored is not None
    want = indexed_columns(stored.record, stored.valid)
    got = {k: row[k] for k in want}
    for k in ("activated", "disabled", "public", "has_published_at", "valid"):
        got[k] = bool(got[k])
    assert got == want
    assert row["revision"] == stored.revision == get(cat, uuid).image.revision


def test_every_write_leaves_the_full_indexed_row(catalog_dc: Catalog) -> None:
    origin = catalog_dc.create(manifest())
    activate(catalog_dc, origin["uuid"])
    img = catalog_dc.create(manifest(name="before", os="smartos", origin=origin["uuid"]))
    u = img["uuid"]
    _check(catalog_dc, u)
    activate(catalog_dc, u)  # attach (revision only), then state, activated, published_at
    _check(catalog_dc, u)
    update(catalog_dc, u, {"name": "after", "os": "linux", "public": True})
    _check(catalog_dc, u)
    for action in ("DisableImage", "EnableImage"):
        catalog_dc.call(action, caller=caller(), uuid=u)
        _check(catalog_dc, u)
    update(catalog_dc, u, {"description": "only the docs row changes"})
    _check(catalog_dc, u)
