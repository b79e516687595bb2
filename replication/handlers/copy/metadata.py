"""Bringing a copied image's metadata in line with the source: the synced manifest fields
(UpdateImage), disabled, ACL and icon."""

from __future__ import annotations

import json
from typing import Any

from imgapi.v1 import catalog_pb2, image_pb2

from imgapi_common.manifest_fields import USER_UPDATABLE_FIELDS
from replication.adapters.destination import VIEW, Destination
from replication.adapters.sources import Source, SourceImage
from replication.handlers.copy.icon import copy_icon

#: Keys of the image object kept in sync by UpdateImage (owner: a difference is a conflict).
SYNCED_KEYS = (
    *(k for k in USER_UPDATABLE_FIELDS if k not in ("owner", "acl", "channels")),
    "billing_tags",
    "traits",
)


def sync_metadata(source: Source, target: Destination, img: SourceImage, dest: image_pb2.Image) -> bool:
    """Update the local image ``dest`` to match ``img``; whether anything changed."""
    changed = False
    have = json.loads(dest.view_json) if dest.view_json else {}
    want = img.manifest
    body: dict[str, Any] = {}
    for key in SYNCED_KEYS:
        if key in want:
            if have.get(key) != want[key] or key not in have:
                body[key] = want[key]
        elif key in have:
            body[key] = None
    if body:
        dest = target.call(
            "UpdateImage",
            catalog_pb2.UpdateImageRequest(
                caller=target.write_caller, view=VIEW, uuid=img.uuid, update_json=json.dumps(body)
            ),
        ).image
        changed = True
    disabled = want.get("disabled") is True
    if disabled != dest.disabled:
        method = "DisableImage" if disabled else "EnableImage"
        dest = target.call(
            method,
            catalog_pb2.ImageActionRequest(caller=target.write_caller, view=VIEW, uuid=img.uuid),
        ).image
        changed = True
    want_acl = want.get("acl") if isinstance(want.get("acl"), list) else []
    assert isinstance(want_acl, list)
    have_acl = list(dest.acl)
    add = [a for a in want_acl if a not in have_acl]
    remove = [a for a in have_acl if a not in want_acl]
    for acl, is_add in ((add, True), (remove, False)):
        if acl:
            req = catalog_pb2.ImageAclRequest(caller=target.write_caller, view=VIEW, uuid=img.uuid, acl=acl)
            dest = target.call("AddImageAcl" if is_add else "RemoveImageAcl", req).image
            changed = True
    if img.icon is None:
        if dest.HasField("icon"):
            target.call(
                "DetachImageIcon",
                catalog_pb2.DetachImageIconRequest(caller=target.write_caller, view=VIEW, uuid=img.uuid),
            )
            changed = True
    elif not dest.HasField("icon") or (img.icon.sha1 and img.icon.sha1 != dest.icon.sha1):
        copy_icon(source, target, img)
        changed = True
    return changed
