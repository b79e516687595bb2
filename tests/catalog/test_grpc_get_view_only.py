"""GetImage's REST fast path: view_only returns the same view and ETag without typed fields."""

from __future__ import annotations

from tests.catalog.conftest import V2, Catalog, caller, catalog_dc, manifest

__all__ = ["catalog_dc"]


def test_view_only_matches_the_full_response(catalog_dc: Catalog) -> None:
    view = catalog_dc.create(manifest(description="fast path", tags={"k": 1}))
    full = catalog_dc.call("GetImage", caller=caller(), view=V2, uuid=view["uuid"])
    fast = catalog_dc.call("GetImage", caller=caller(), view=V2, uuid=view["uuid"], view_only=True)
    assert fast.image.view_json == full.image.view_json
    assert fast.image.etag == full.image.etag
    assert fast.image.revision == full.image.revision
    assert fast.image.uuid == view["uuid"]
    assert full.image.name == view["name"] and fast.image.name == ""
    assert not fast.image.HasField("tags_json") and full.image.HasField("tags_json")
    again = catalog_dc.call(
        "GetImage",
        caller=caller(),
        view=V2,
        uuid=view["uuid"],
        view_only=True,
        preconditions={"if_none_match": {"tags": [{"opaque": full.image.etag}]}},
    )
    assert again.not_modified
