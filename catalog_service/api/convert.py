"""Stored records <-> protobuf messages, and request preconditions (no rules here, only shapes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from imgapi.v1 import common_pb2, image_pb2

from catalog_service.domain.preconditions import Conditions, DateCondition, TagCondition
from catalog_service.handlers.operations import Rendered
from imgapi_common.jsvalues import is_true

_OPTIONAL_TEXT = (
    "published_at",
    "type",
    "os",
    "description",
    "homepage",
    "eula",
    "urn",
    "origin",
    "nic_driver",
    "disk_driver",
    "cpu_type",
    "expires_at",
)
_JSON_FIELDS = {
    "requirements": "requirements_json",
    "users": "users_json",
    "generate_passwords": "generate_passwords_json",
    "inherited_directories": "inherited_directories_json",
    "image_size": "image_size_json",
    "tags": "tags_json",
    "traits": "traits_json",
    "error": "error_json",
}


def _dumps(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _str_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def image_message(r: Rendered) -> image_pb2.Image:
    rec = r.record
    msg = image_pb2.Image(
        v=_int(rec.get("v")),
        uuid=str(rec.get("uuid", "")),
        owner=str(rec.get("owner", "")),
        name=str(rec.get("name", "")),
        version=str(rec.get("version", "")),
        state=str(rec.get("state", "")),
        disabled=is_true(rec.get("disabled")),
        public=is_true(rec.get("public")),
        activated=is_true(rec.get("activated")),
        acl=_str_list(rec.get("acl")),
        billing_tags=_str_list(rec.get("billing_tags")),
        channels=_str_list(rec.get("channels")),
        view_json=r.view_json,
        etag=r.etag,
        revision=r.revision,
    )
    for key in _OPTIONAL_TEXT:
        v = rec.get(key)
        if isinstance(v, str):
            setattr(msg, key, v)
    for key, attr in _JSON_FIELDS.items():
        if key in rec:
            setattr(msg, attr, _dumps(rec[key]))
    files = rec.get("files")
    if isinstance(files, list):
        for f in files:
            if isinstance(f, dict):
                msg.files.append(file_message(f))
    icon = rec.get("icon")
    if isinstance(icon, dict):
        msg.icon.CopyFrom(
            image_pb2.ImageIcon(
                sha1=str(icon.get("sha1", "")),
                size=_int(icon.get("size")),
                content_type=str(icon.get("contentType", "")),
                content_md5=str(icon.get("contentMD5", "")),
                mtime=str(icon.get("mtime", "")),
                stor=str(icon.get("stor", "")),
                blob_id=str(icon.get("blob_id", "")),
            )
        )
    return msg


def view_only_message(r: Rendered) -> image_pb2.Image:
    """The Image of a REST answer: uuid, view text, ETag and revision, no typed fields."""
    return image_pb2.Image(
        uuid=str(r.record.get("uuid", "")), view_json=r.view_json, etag=r.etag, revision=r.revision
    )


def file_message(f: Mapping[str, Any]) -> image_pb2.ImageFile:
    m = image_pb2.ImageFile(
        sha1=str(f.get("sha1", "")),
        size=_int(f.get("size")),
        compression=str(f.get("compression", "")),
        stor=str(f.get("stor", "")),
        content_md5=str(f.get("contentMD5", "")),
        mtime=str(f.get("mtime", "")),
        blob_id=str(f.get("blob_id", "")),
    )
    for key, attr in (
        ("dataset_guid", "dataset_guid"),
        ("digest", "digest"),
        ("uncompressedDigest", "uncompressed_digest"),
    ):
        if isinstance(f.get(key), str):
            setattr(m, attr, f[key])
    return m


def file_entry(m: image_pb2.ImageFile) -> dict[str, Any]:
    """An attach request's file as the service expects it."""
    out: dict[str, Any] = {
        "sha1": m.sha1,
        "size": m.size,
        "compression": m.compression,
        "contentMD5": m.content_md5,
        "stor": m.stor,
        "blob_id": m.blob_id,
    }
    if m.HasField("dataset_guid"):
        out["dataset_guid"] = m.dataset_guid
    # a Docker layer's digests: stored with the file, never part of the REST view
    if m.HasField("digest"):
        out["digest"] = m.digest
    if m.HasField("uncompressed_digest"):
        out["uncompressedDigest"] = m.uncompressed_digest
    return out


def icon_entry(m: image_pb2.ImageIcon) -> dict[str, Any]:
    return {
        "sha1": m.sha1,
        "size": m.size,
        "contentMD5": m.content_md5,
        "contentType": m.content_type,
        "stor": m.stor,
        "blob_id": m.blob_id,
    }


def _tags(c: common_pb2.EntityTagCondition) -> TagCondition:
    return TagCondition(c.any, tuple(t.opaque for t in c.tags), c.header)


def _date(c: common_pb2.DateCondition) -> DateCondition:
    return DateCondition(c.time.seconds, c.header)


def conditions_of(p: common_pb2.Preconditions) -> Conditions:
    """The request's conditions; an unset field is no condition."""
    return Conditions(
        _tags(p.if_match) if p.HasField("if_match") else None,
        _tags(p.if_none_match) if p.HasField("if_none_match") else None,
        _date(p.if_modified_since) if p.HasField("if_modified_since") else None,
        _date(p.if_unmodified_since) if p.HasField("if_unmodified_since") else None,
    )
