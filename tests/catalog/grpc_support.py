"""Helpers shared by the catalog gRPC-level tests (tests/catalog/test_grpc_*.py)."""

from __future__ import annotations

import json
import uuid as uuidlib
from email.utils import parsedate_to_datetime
from typing import Any

from google.protobuf import timestamp_pb2
from imgapi.v1 import catalog_pb2, common_pb2, image_pb2

from imgapi_common.errors import ImgapiError
from tests.catalog.conftest import V2, Catalog, caller

ADMIN_VIEW = common_pb2.ImageView(include_channels=True, include_admin_fields=True)
V1 = common_pb2.ImageView(include_channels=False)
FIXTURE_DC = "dc-test-images.json"

# dc-test-images.json records (fixtures README)
BASE_181 = "c58161c0-2547-11e2-a75e-9fdca1940570"  # active, public, sdc
NODEJS_100 = "da58c25a-2547-11e2-9b8d-136daa650e8a"  # disabled, public, sdc
BASE_200 = "e078a6aa-2547-11e2-8688-03ac37b2b4a0"  # unactivated, public, sdc
FATHER = "7a1b1967-6ecf-1e4c-8f09-f49094cc36ad"  # active, private, vader, acl luke
DARK_SIDE = "9f819499-8298-9842-8cc5-1c2838196ab4"  # disabled, private, vader, acl luke
JOIN_US = "2d28c64f-fb16-2145-a0ca-f626aea35c77"  # unactivated, private, vader, acl emperor


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def view_of(resp: Any) -> dict[str, Any]:
    """The REST view (a dict in key order) of an ImageResponse or Image message."""
    img = resp.image if hasattr(resp, "image") else resp
    out: dict[str, Any] = json.loads(img.view_json)
    return out


def etags(*opaque: str, weak: bool = False) -> common_pb2.EntityTagCondition:
    """An If-Match / If-None-Match condition as the REST edge sends it (``*`` for any)."""
    cond = common_pb2.EntityTagCondition(header=", ".join(opaque))
    for t in opaque:
        if t == "*":
            cond.any = True
        else:
            cond.tags.add(opaque=t, weak=weak)
    return cond


def http_date(text: str) -> common_pb2.DateCondition:
    """An If-Modified-Since / If-Unmodified-Since condition as the REST edge sends it."""
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(parsedate_to_datetime(text))
    return common_pb2.DateCondition(time=ts, header=text)


def errs(e: ImgapiError) -> list[tuple[str, str]]:
    return [(f.field, f.code) for f in e.errors]


def file_msg(blob_id: str | None = None, **over: Any) -> image_pb2.ImageFile:
    fields: dict[str, Any] = {
        "sha1": "1b4240b257a89a190fd1a3c9eccffc7ccc951352",
        "size": 22,
        "compression": "bzip2",
        "content_md5": "J6sttoCHpi4ByXyf3LrjXw==",
        "blob_id": blob_id or f"blob-{uuidlib.uuid4().hex}",
        "stor": "local",
    }
    fields.update(over)
    return image_pb2.ImageFile(**fields)


def icon_msg(blob_id: str | None = None) -> image_pb2.ImageIcon:
    return image_pb2.ImageIcon(
        sha1="5dc2128179e6cd704380579a700e69b8e72e3420",
        size=33220,
        content_type="image/jpeg",
        content_md5="kOz6hclMuswVHSIFvIYmcQ==",
        stor="local",
        blob_id=blob_id or f"icon-{uuidlib.uuid4().hex}",
    )


def attach_file(cat: Catalog, uuid: str, account: str = "", channel: str = "", **over: Any) -> Any:
    return cat.call(
        "AttachImageFile",
        caller=caller(account, channel),
        view=V2,
        uuid=uuid,
        file=file_msg(**over),
    )


def activate(cat: Catalog, uuid: str, account: str = "", channel: str = "") -> dict[str, Any]:
    """Attach a file and activate; returns the activated image's view."""
    attach_file(cat, uuid, account, channel)
    return view_of(cat.call("ActivateImage", caller=caller(account, channel), view=V2, uuid=uuid))


def create_active(cat: Catalog, m: dict[str, Any], account: str = "", channel: str = "") -> dict[str, Any]:
    img = cat.create(m, account=account, channel=channel)
    return activate(cat, img["uuid"], account, channel)


def get(cat: Catalog, uuid: str, account: str = "", channel: str = "", **kw: Any) -> Any:
    return cat.call("GetImage", caller=caller(account, channel), view=kw.pop("view", V2), uuid=uuid, **kw)


def get_view(cat: Catalog, uuid: str, account: str = "", channel: str = "") -> dict[str, Any]:
    return view_of(get(cat, uuid, account, channel))


def snapshot(cat: Catalog, uuid: str) -> bytes:
    """Everything the catalog reveals about an image (typed fields, both views, etag, revision)."""
    a = get(cat, uuid, view=ADMIN_VIEW).image
    b = get(cat, uuid, view=V1).image
    out: bytes = a.SerializeToString(deterministic=True) + b"|" + b.SerializeToString(deterministic=True)
    return out


def list_images(cat: Catalog, account: str = "", channel: str = "", **kw: Any) -> list[dict[str, Any]]:
    """The images of a ListImages call. Every call is made twice, the second time with
    ``page_json_only`` (the REST gateway's call), and the page must be exactly the first answer's
    views joined into one JSON array text: every listing test checks the page path too."""
    auth = kw.pop("authenticated", False)
    view = kw.pop("view", V2)
    who = caller(account, channel, authenticated=auth)
    resp = cat.call("ListImages", caller=who, view=view, **kw)
    views = [i.view_json for i in resp.images]
    page = cat.call("ListImages", caller=who, view=view, page_json_only=True, **kw)
    assert not page.images
    assert page.page_json == "[" + ",".join(views) + "]"
    return [json.loads(v) for v in views]


def list_uuids(cat: Catalog, account: str = "", channel: str = "", **kw: Any) -> list[str]:
    return [i["uuid"] for i in list_images(cat, account, channel, **kw)]


def update(cat: Catalog, uuid: str, body: Any, account: str = "", channel: str = "", **kw: Any) -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return cat.call(
        "UpdateImage", caller=caller(account, channel), view=V2, uuid=uuid, update_json=text, **kw
    )


def import_image(
    cat: Catalog, uuid: str, m: dict[str, Any] | str, account: str = "", channel: str = "", **kw: Any
) -> Any:
    text = m if isinstance(m, str) else json.dumps(m)
    return cat.call(
        "AdminImportImage", caller=caller(account, channel), view=V2, uuid=uuid, manifest_json=text, **kw
    )


def seed_fixture(cat: Catalog, name: str) -> list[dict[str, Any]]:
    from tests.components import FIXTURES

    records: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())
    for rec in records:
        cat.seed(rec)
    return records


def changes(cat: Catalog, after: int = 0) -> list[catalog_pb2.ChangeEvent]:
    return list(cat.stub.WatchChanges(catalog_pb2.WatchChangesRequest(after_cursor=after, replay_only=True)))
