"""SQLite catalogs read their database through one memory map (``sqlite_mmap_bytes``) shared by
every pooled connection, instead of a small page cache per connection that a 1000-image listing
overflows; 0 turns it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.catalog.conftest import SDC, caller, manifest, running_catalog


def _mapped(db: Path) -> bool:
    """Whether this process (the catalog runs in it) has the database file memory-mapped."""
    return any(line.rstrip().endswith(str(db)) for line in Path("/proc/self/maps").read_text().splitlines())


@pytest.mark.parametrize("mmap_bytes", [64 * 1024 * 1024, 0])
def test_listing_reads_through_the_memory_map(tmp_path: Path, mmap_bytes: int) -> None:
    db = tmp_path / "catalog.db"
    with running_catalog(
        f"sqlite:///{db}",
        "sqlite",
        mode="dc",
        admin_uuid=SDC,
        sqlite_mmap_bytes=mmap_bytes,
        list_cache_bytes=0,
    ) as cat:
        made = {cat.create(manifest(name=f"img-{i}"))["uuid"] for i in range(3)}
        listed = {i.uuid for i in cat.call("ListImages", caller=caller(), state="all").images}
        assert listed == made
        assert _mapped(db) is (mmap_bytes > 0)
