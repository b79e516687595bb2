"""Issue 16 classes 12, 14 and 15 through HTTP, pinned to the byte: coercions the reference
accepts, AdminImportImage's consumption of urn/published_at and its SDC 6 upgrade in public mode,
and a ``files`` update on an image without a file."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.compat_catalog_support import assert_answer, create, created, invalid, manifest
from tests.gateway.helpers import LUKE

ZVOL = {"type": "zvol", "nic_driver": "virtio", "disk_driver": "virtio", "cpu_type": "host", "image_size": 10}


def _view(img: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The image object the server answers for a fresh create with these extra shown fields."""
    out: dict[str, Any] = {
        "v": fields.pop("v", 2),
        "uuid": img["uuid"],
        "owner": LUKE,
        "name": "compat",
        "version": fields.pop("version", "1.0.0"),
        "state": "unactivated",
        "disabled": False,
        "public": False,
        "type": fields.pop("type", "zone-dataset"),
        "os": "smartos",
        "files": [],
    }
    out.update(fields)
    return out


@pytest.mark.parametrize(
    ("extra", "shown"),
    [
        ({"v": None}, {"v": 0}),  # Number(null) === 0
        ({"v": []}, {"v": 0}),
        ({"v": ""}, {"v": 0}),
        ({"traits": []}, {}),  # an empty array is an object without keys: accepted, not shown
        ({"requirements": 5}, {"requirements": 5}),  # a number has no keys: nothing unsupported
        ({"description": 5}, {"description": 5}),
        ({"version": 1.5}, {"version": 1.5}),
    ],
)
def test_accepted_coercions(dc: httpx.Client, extra: dict[str, Any], shown: dict[str, Any]) -> None:
    r = create(dc, manifest(**extra))
    assert r.status_code == 200, r.text
    assert_answer(r, 200, _view(r.json(), **shown))


def test_requirements_string_is_an_object_of_characters(dc: httpx.Client) -> None:
    r = create(dc, manifest(requirements="ab"))
    errors = [
        {"field": "0", "code": "Invalid", "message": 'unsupported requirement "0"'},
        {"field": "1", "code": "Invalid", "message": 'unsupported requirement "1"'},
    ]
    assert_answer(r, 422, invalid(errors))


def test_numeric_name_is_still_refused(dc: httpx.Client) -> None:
    r = create(dc, manifest(name=5))
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["name"]


def test_update_stores_an_image_size_string_as_given(dc: httpx.Client) -> None:
    img = created(dc, **ZVOL)
    r = dc.post(f"/images/{img['uuid']}?action=update", json={"image_size": "1e3"})
    zvol_fields = {k: v for k, v in ZVOL.items() if k != "type"}
    assert_answer(r, 200, _view(img, type="zvol", **{**zvol_fields, "image_size": "1e3"}))


def test_files_update_without_a_file_is_accepted(dc: httpx.Client) -> None:
    img = created(dc)
    before = dc.get(f"/images/{img['uuid']}")
    r = dc.post(f"/images/{img['uuid']}?action=update", json={"files": [{"digest": "sha256:abc"}]})
    assert_answer(r, 200, _view(img))
    assert r.content == before.content
    assert r.headers["etag"] == before.headers["etag"]


# --- class 14: import -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"), [("urn", ""), ("urn", None), ("published_at", 0), ("published_at", "")]
)
def test_import_falsy_urn_or_published_at_is_an_extra_parameter(
    dc: httpx.Client, key: str, value: Any
) -> None:
    u = "0a4c3b8e-3f51-4a10-9d3e-1f1d6b6c8a01"
    r = dc.post(f"/images/{u}?action=import", json={**manifest(v=2, uuid=u, owner=LUKE), key: value})
    assert_answer(
        r,
        422,
        {
            "code": "InvalidParameter",
            "message": f'invalid extra parameters: "{key}"',
            "errors": [{"field": key, "code": "Invalid"}],
        },
    )
    assert dc.get(f"/images/{u}").status_code == 404


def test_sdc6_manifest_on_a_public_server_is_refused(pub: httpx.Client) -> None:
    u = "0a4c3b8e-3f51-4a10-9d3e-1f1d6b6c8a02"
    v1 = {
        "uuid": u,
        "name": "old",
        "version": "1.0.0",
        "type": "zone-dataset",
        "os": "smartos",
        "creator_uuid": LUKE,
        "vendor_uuid": LUKE,
        "creator_name": "luke",
        "cloud_name": "sdc",
        "urn": "sdc:sdc:old:1.0.0",
        "created_at": "2012-01-01T00:00Z",
        "files": [{"path": "old.zfs.bz2", "sha1": "a" * 40, "size": 1}],
    }
    r = pub.post(f"/images/{u}?action=import", json=v1)
    extra = ["creator_uuid", "vendor_uuid", "creator_name", "cloud_name", "created_at"]
    assert_answer(
        r,
        422,
        {
            "code": "InvalidParameter",
            "message": "invalid extra parameters: " + ", ".join(f'"{k}"' for k in extra),
            "errors": [{"field": k, "code": "Invalid"} for k in extra],
        },
    )
    assert pub.get(f"/images/{u}").status_code == 404
