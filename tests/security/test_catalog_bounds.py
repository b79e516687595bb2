"""Issue 10 item 2: no tenant can store an image whose answers cannot be sent.

Every stored field is bounded, and so is the whole image (docs/limits.md): a write breaking a bound
is refused with 422 ``ValidationFailed`` naming the field *before* it commits (a retry cannot make
a duplicate), and a ListImages page of 1000 of the largest images fits the transport.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from imgapi.v1 import common_pb2

from catalog_service.api.convert import image_message
from catalog_service.domain.bounds import MAX_FIELD_JSON_CHARS, record_bytes
from catalog_service.domain.records import build_record
from catalog_service.domain.serialize import compact_json
from catalog_service.handlers.operations import View
from imgapi_common.errors import ImgapiError
from imgapi_common.limits import (
    MAX_CATALOG_ANSWER_BYTES,
    MAX_CLIENT_IMAGE_BYTES,
    MAX_IMAGE_ANSWER_BYTES,
    MAX_IMAGE_BYTES,
    MAX_JSON_BODY_BYTES,
    MAX_PAGE,
)
from tests.catalog.conftest import Catalog, caller, running_catalog
from tests.catalog.grpc_support import file_msg, icon_msg
from tests.gateway.conftest import Stack, start_stack

VADER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
SDC = "ba28f844-8cb4-f141-882d-46d6251e6a9f"
V2 = common_pb2.ImageView(include_channels=True)


def manifest(**extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "owner": VADER,
        "name": f"bounds-{uuid.uuid4().hex[:8]}",
        "version": "1.0.0",
        "type": "zone-dataset",
        "os": "smartos",
    }
    m.update(extra)
    return m


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("bounds"), mode="dc", admin_uuid=SDC)
    yield s
    s.stop()


@pytest.fixture()
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    url = f"sqlite:///{tmp_path_factory.mktemp('bounds-grpc') / 'catalog.db'}"
    with running_catalog(url, "sqlite", mode="dc", admin_uuid=SDC) as c:
        yield c


def _names(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    r = http.get("/images", params={"name": name, "state": "all"})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def _refused(r: httpx.Response, field: str) -> dict[str, Any]:
    assert r.status_code == 422, r.text[:500]
    body: dict[str, Any] = r.json()
    assert body["code"] == "ValidationFailed"
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["errors"][0]["code"] == "Invalid"
    assert body["message"] == f"invalid image data: {field}"
    return body


def _huge_traits() -> dict[str, Any]:
    return {f"t{i}": "x" * 1000 for i in range(7000)}  # ~7 MB, under the 8 MiB body limit


# --- HTTP ------------------------------------------------------------------------------------------


def test_create_with_huge_traits_is_refused_before_commit(http: httpx.Client) -> None:
    m = manifest(traits=_huge_traits())
    for _ in range(2):  # a retrying client must not make duplicates
        _refused(http.post(f"/images?account={VADER}", json=m), "traits")
    assert _names(http, m["name"]) == []


def test_create_with_huge_requirements_is_refused(http: httpx.Client) -> None:
    m = manifest(requirements={"networks": [{"name": "n" * 1000, "description": "d"}] * 4000})
    _refused(http.post("/images", json=m), "requirements")
    assert _names(http, m["name"]) == []


def test_update_with_huge_acl_is_refused_and_changes_nothing(http: httpx.Client) -> None:
    img = http.post("/images", json=manifest()).json()
    before = http.get(f"/images/{img['uuid']}")
    acl = [str(uuid.uuid4()) for _ in range(100_000)]
    _refused(http.post(f"/images/{img['uuid']}?action=update", json={"acl": acl}), "acl")
    after = http.get(f"/images/{img['uuid']}")
    assert (after.content, after.headers["etag"]) == (before.content, before.headers["etag"])


def test_acl_add_beyond_the_bound_is_refused_and_remove_works(http: httpx.Client) -> None:
    img = http.post("/images", json=manifest()).json()
    per_uuid = len(compact_json([str(uuid.uuid4())] * 2)) - len(compact_json([str(uuid.uuid4())]))
    fits = [str(uuid.uuid4()) for _ in range(MAX_FIELD_JSON_CHARS["acl"] // per_uuid)]
    r = http.post(f"/images/{img['uuid']}/acl?action=add", json=fits)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["acl"] == fits
    before = http.get(f"/images/{img['uuid']}")
    _refused(http.post(f"/images/{img['uuid']}/acl?action=add", json=[str(uuid.uuid4())]), "acl")
    after = http.get(f"/images/{img['uuid']}")
    assert (after.content, after.headers["etag"]) == (before.content, before.headers["etag"])
    r = http.post(f"/images/{img['uuid']}/acl?action=remove", json=fits[:10])
    assert r.status_code == 200
    assert r.json()["acl"] == fits[10:]


def test_import_with_huge_field_is_refused_and_retry_is_not_a_conflict(http: httpx.Client) -> None:
    u = str(uuid.uuid4())
    m = manifest(v=2, uuid=u, users=[{"name": "u" * 100}] * 20_000)
    for _ in range(2):
        _refused(http.post(f"/images/{u}?action=import", json=m), "users")
    assert http.get(f"/images/{u}").status_code == 404
    m["users"] = [{"name": "root"}]
    r = http.post(f"/images/{u}?action=import", json=m)
    assert r.status_code == 200, r.text


def test_whole_image_bound_names_the_largest_field(http: httpx.Client) -> None:
    # every field within its own bound, the whole image above MAX_IMAGE_BYTES
    m = manifest(
        tags={"k": "x" * 102000},
        description="d" * 10240,
        requirements={"networks": [{"name": "n" * 100, "description": "d"}] * 100},
        users=[{"name": "u" * 100}] * 100,
    )
    body = _refused(http.post("/images", json=m), "tags")
    assert f"(max {MAX_CLIENT_IMAGE_BYTES})" in body["errors"][0]["message"]
    assert _names(http, m["name"]) == []


def test_short_text_fields_are_bounded(http: httpx.Client) -> None:
    u = str(uuid.uuid4())
    _refused(http.post(f"/images/{u}?action=import", json=manifest(v=2, uuid=u, urn="u" * 5000)), "urn")
    zvol = manifest(type="zvol", nic_driver="virtio", disk_driver="virtio", cpu_type="x" * 5000, image_size=1)
    _refused(http.post("/images", json=zvol), "cpu_type")
    zvol = manifest(type="zvol", nic_driver="virtio", disk_driver="virtio", cpu_type="host", image_size=1)
    made = http.post("/images", json=zvol).json()
    long_size = {"image_size": "0" * 100 + "1"}  # a valid integer for Number(), stored as given
    _refused(http.post(f"/images/{made['uuid']}?action=update", json=long_size), "image_size")


def test_a_body_at_the_gateway_limit_is_judged_not_a_500(http: httpx.Client) -> None:
    # the catalog receives the largest body the gateway accepts, with its framing
    base = manifest(description="")
    body = json.dumps(dict(base, description="x" * (MAX_JSON_BODY_BYTES - len(json.dumps(base))))).encode()
    assert len(body) == MAX_JSON_BODY_BYTES
    r = http.post(f"/images?account={VADER}", content=body, headers={"Content-Type": "application/json"})
    _refused_as(r, "description")


def _refused_as(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text[:300]
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_stored_oversized_record_is_invisible_and_lists_still_work(stack: Stack, http: httpx.Client) -> None:
    u = str(uuid.uuid4())
    stack.catalog.store_raw(
        {
            "v": 2,
            "uuid": u,
            "owner": VADER,
            "name": "legacy-huge",
            "version": "1",
            "type": "zone-dataset",
            "os": "smartos",
            "public": True,
            "disabled": False,
            "activated": True,
            "state": "active",
            "published_at": "2020-01-01T00:00:00Z",
            "files": [{"sha1": "a" * 40, "size": 1, "compression": "none"}],
            "acl": [],
            "traits": _huge_traits(),
        }
    )
    assert http.get(f"/images/{u}").status_code == 404
    r = http.get("/images?limit=1000&state=all")
    assert r.status_code == 200
    assert u not in [i["uuid"] for i in r.json()]


# --- gRPC ------------------------------------------------------------------------------------------


def _grpc_refused(cat: Catalog, method: str, field: str, **fields: Any) -> None:
    with pytest.raises(ImgapiError) as ei:
        cat.call(method, **fields)
    e = ei.value
    assert (e.code, e.http_status) == ("ValidationFailed", 422)
    assert [(f.field, f.code) for f in e.errors] == [(field, "Invalid")]


def test_grpc_writes_are_refused_before_commit(cat: Catalog) -> None:
    m = manifest(traits=_huge_traits())
    _grpc_refused(cat, "CreateImage", "traits", caller=caller(), view=V2, manifest_json=json.dumps(m))
    listed = cat.call("ListImages", caller=caller(), view=V2, name=m["name"], state="all")
    assert list(listed.images) == []

    u = str(uuid.uuid4())
    body = json.dumps(manifest(v=2, uuid=u, error={"message": "e" * 20000}))
    for _ in range(2):
        _grpc_refused(cat, "AdminImportImage", "error", caller=caller(), view=V2, uuid=u, manifest_json=body)

    made = cat.create(manifest())
    acl = json.dumps({"acl": [str(uuid.uuid4()) for _ in range(50_000)]})
    _grpc_refused(cat, "UpdateImage", "acl", caller=caller(), view=V2, uuid=made["uuid"], update_json=acl)
    _grpc_refused(
        cat,
        "AddImageAcl",
        "acl",
        caller=caller(),
        view=V2,
        uuid=made["uuid"],
        acl=[str(uuid.uuid4()) for _ in range(50_000)],
    )
    got = cat.call("GetImage", caller=caller(), view=V2, uuid=made["uuid"])
    assert json.loads(got.image.view_json) == made


# --- the largest image, and a page of 1000 of them ---------------------------------------------


def largest_record(service: Any, name: str) -> dict[str, Any]:
    """A valid, active stored record of exactly MAX_IMAGE_BYTES, every field within its bound."""
    rec: dict[str, Any] = {
        "v": 2,
        "uuid": str(uuid.uuid4()),
        "owner": VADER,
        "name": name,
        "version": "1.0.0",
        "type": "zone-dataset",
        "os": "smartos",
        "public": True,
        "disabled": False,
        "activated": True,
        "state": "active",
        "published_at": "2020-01-01T00:00:00.000Z",
        "files": [{"sha1": "a" * 40, "size": 1, "compression": "none", "stor": "local"}],
        "acl": [],
        "description": "d" * 10240,
        "homepage": "https://example.com/" + "h" * 1000,
        "eula": "https://example.com/" + "e" * 1000,
        "tags": {"k": "x" * (102400 - len('{"k":""}'))},
        "users": [{"name": ""}],
    }
    rec["users"][0]["name"] = "u" * (MAX_IMAGE_BYTES - record_bytes(rec))
    assert record_bytes(rec) == MAX_IMAGE_BYTES
    assert service.is_valid(rec)
    return rec


def test_the_largest_answer_fits_its_allowance(cat: Catalog) -> None:
    rec = largest_record(cat.service, "largest")
    admin = View(include_channels=True, include_admin_fields=True)
    answer = image_message(cat.service.render(rec, admin, 1))
    assert answer.ByteSize() <= MAX_IMAGE_ANSWER_BYTES
    assert MAX_PAGE * MAX_IMAGE_ANSWER_BYTES < MAX_CATALOG_ANSWER_BYTES


def _client_body(filler: int) -> dict[str, Any]:
    return manifest(
        name="client-bound",
        description="d" * 10240,
        homepage="https://example.com/" + "h" * 1000,
        tags={"k": "x" * (102400 - len('{"k":""}'))},
        users=[{"name": "u" * filler}],
    )


def test_an_image_at_the_client_bound_still_gets_its_file_and_is_activated(cat: Catalog) -> None:
    # the filler that makes the stored record exactly MAX_CLIENT_IMAGE_BYTES
    probe = build_record(
        {**_client_body(0), "v": 2}, cat.service.cfg, for_import=False, new_uuid=str(uuid.uuid4())
    )
    filler = MAX_CLIENT_IMAGE_BYTES - record_bytes(probe)
    over = _client_body(filler + 1)
    _grpc_refused(cat, "CreateImage", "tags", caller=caller(), view=V2, manifest_json=json.dumps(over))
    made = cat.create(_client_body(filler))
    u = made["uuid"]
    cat.call("AttachImageFile", caller=caller(), view=V2, uuid=u, file=file_msg(dataset_guid="1" * 20))
    cat.call("AttachImageIcon", caller=caller(), view=V2, uuid=u, icon=icon_msg())
    cat.call("ActivateImage", caller=caller(), view=V2, uuid=u)
    # ... but a client write on it has no room left
    _grpc_refused(
        cat,
        "UpdateImage",
        "tags",
        caller=caller(),
        view=V2,
        uuid=u,
        update_json=json.dumps({"version": "1.0.1"}),
    )
    admin = common_pb2.ImageView(include_channels=True, include_admin_fields=True)
    full = cat.call("GetImage", caller=caller(), view=admin, uuid=u, incl_admin_fields="true")
    assert full.image.ByteSize() <= MAX_IMAGE_ANSWER_BYTES
    assert json.loads(full.image.view_json)["state"] == "active"


def test_a_page_of_1000_largest_images_is_answered(tmp_path: Path) -> None:
    # ~0.5 GB of SQLite writes: in memory when the machine has a tmpfs, to keep the test quick
    shm = Path("/dev/shm")
    where = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path
    s = start_stack(where, mode="dc", admin_uuid=SDC)
    try:
        template = largest_record(s.catalog, "page")
        recs = [dict(template, uuid=str(uuid.uuid4())) for _ in range(MAX_PAGE)]
        s.catalog.store_many(recs)
        with httpx.Client(base_url=s.base_url, timeout=120) as http:
            r = http.get("/images", params={"limit": "1000", "name": "page"})
        assert r.status_code == 200, r.text[:300]
        page = r.json()
        assert len(page) == MAX_PAGE
        assert {i["uuid"] for i in page} == {x["uuid"] for x in recs}
    finally:
        s.stop()
        if where != tmp_path:
            shutil.rmtree(where)
