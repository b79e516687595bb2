"""``ImageView.view_only`` and ``PrepareImageUploadRequest.plan_only``: a caller that answers with
the REST text alone (the gateway) gets the same view, ETag and revision, without the typed fields."""

from __future__ import annotations

import json
from typing import Any

from imgapi.v1 import catalog_pb2, common_pb2, image_pb2

from tests.catalog.conftest import Catalog, caller, manifest
from tests.catalog.grpc_support import file_msg

FULL = common_pb2.ImageView(include_channels=True)
ONLY = common_pb2.ImageView(include_channels=True, view_only=True)


def _expected_only(full: image_pb2.Image) -> image_pb2.Image:
    return image_pb2.Image(uuid=full.uuid, view_json=full.view_json, etag=full.etag, revision=full.revision)


def test_writes_and_reads_answer_the_view_alone(catalog_dc: Catalog) -> None:
    created = catalog_dc.call(
        "CreateImage",
        caller=caller(),
        view=ONLY,
        manifest_json=json.dumps(manifest()),
    )
    u = created.image.uuid
    full = catalog_dc.call("GetImage", caller=caller(), view=FULL, uuid=u).image
    assert full.name and full.owner and full.state == "unactivated"  # the typed fields, when asked
    assert created.image == _expected_only(full)
    attached = catalog_dc.call("AttachImageFile", caller=caller(), view=ONLY, uuid=u, file=file_msg())
    full = catalog_dc.call("GetImage", caller=caller(), view=FULL, uuid=u).image
    assert len(full.files) == 1
    assert attached.image == _expected_only(full)
    activated = catalog_dc.call("ActivateImage", caller=caller(), view=ONLY, uuid=u)
    full = catalog_dc.call("GetImage", caller=caller(), view=FULL, uuid=u).image
    assert full.activated and full.state == "active"
    assert activated.image == _expected_only(full)
    assert catalog_dc.call("GetImage", caller=caller(), view=ONLY, uuid=u).image == _expected_only(full)
    updated = catalog_dc.call(
        "UpdateImage", caller=caller(), view=ONLY, uuid=u, update_json='{"description": "d"}'
    )
    full = catalog_dc.call("GetImage", caller=caller(), view=FULL, uuid=u).image
    assert full.description == "d"
    assert updated.image == _expected_only(full)


def test_prepare_answers_the_plan_alone(catalog_dc: Catalog) -> None:
    u = catalog_dc.call(
        "CreateImage", caller=caller(), view=FULL, manifest_json=json.dumps(manifest())
    ).image.uuid
    kinds = catalog_pb2.PrepareImageUploadRequest
    for kind, extra in (
        (kinds.KIND_FILE, {"compression": "none"}),
        (kinds.KIND_ICON, {"content_type": "image/png"}),
    ):
        req: dict[str, Any] = {"caller": caller(), "uuid": u, "kind": kind, **extra}
        full = catalog_dc.call("PrepareImageUpload", **req)
        plan = catalog_dc.call("PrepareImageUpload", **req, plan_only=True)
        assert full.image.uuid == u and not plan.HasField("image")
        assert (plan.max_size, plan.stor) == (full.max_size, full.stor)
        assert plan.max_size > 0 and plan.stor
