"""Building new stored records: a CreateImage / AdminImportImage body becomes a record (unknown
keys refused, known ones copied by their rules, then validated), plus the normalizations and the
derived tags search strings every stored record carries."""

from __future__ import annotations

import contextlib
import math
import uuid as uuid_mod
from collections.abc import Mapping, Sequence
from typing import Any

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.image import check_account
from catalog_service.domain.upgrade import upgrade_dataset_manifest
from catalog_service.domain.validation import image_data_error, record_errors
from imgapi_common.errors import FieldError, invalid_parameter, validation_failed
from imgapi_common.jsvalues import copy_json, js_number, js_string, to_json_number, truthy
from imgapi_common.manifest_fields import tag_search_text


def tags_search_array(tags: Any) -> list[str]:
    """The ``KEY=V`` search strings of a tags object; [] for a non-object. A string value longer than
    ``MAX_TAG_SEARCH_VALUE_LENGTH``, or a non-scalar one, is searchable by its key only (``KEY=``)."""
    if not isinstance(tags, Mapping):
        return []
    return [f"{js_string(key)}={tag_search_text(value)}" for key, value in tags.items()]


def normalize_record(rec: dict[str, Any]) -> dict[str, Any]:
    """The stored-record normalizations, in place: ``acl``/``billing_tags`` bare strings become arrays, absent
    ``acl`` becomes ``[]``. Returns ``rec``."""
    acl = rec.get("acl")
    if "acl" not in rec:
        rec["acl"] = []
    elif isinstance(acl, str):
        rec["acl"] = [acl]
    if isinstance(rec.get("billing_tags"), str):
        rec["billing_tags"] = [rec["billing_tags"]]
    return rec


_COPIED_KEYS = ("v", "owner", "name", "version", "type", "os")
_COPIED_IF_TRUTHY = ("description", "homepage", "eula", "icon")
_COPIED_IF_PRESENT = (
    "error",
    "requirements",
    "users",
    "traits",
    "tags",
    "billing_tags",
    "generate_passwords",
    "inherited_directories",
    "origin",
)


def build_record(
    body: Mapping[str, Any],
    cfg: DomainConfig,
    *,
    for_import: bool,
    new_uuid: str | None = None,
    channels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A new stored record from a CreateImage / AdminImportImage body.

    Raises ``InvalidParameter`` (missing import uuid, bad ``published_at``, extra parameters) or
    ``ValidationFailed``. Owner/origin existence is not checked. The body ``channels`` is always
    discarded; ``channels`` (the request channel list) is stored when given. On a channel server
    called without ``channels`` the record is validated without the ``channels`` requirement and
    the caller must add them before storing.
    """
    data: dict[str, Any] = copy_json(dict(body))  # a parsed JSON value: plain dicts and lists
    # 1. SDC 6 dataset manifest upgrade (imports only); a failure leaves the body unchanged.
    if for_import and "v" not in data and "creator_uuid" in data:
        with contextlib.suppress(ValueError):
            data = upgrade_dataset_manifest(data)
    # 2. Import-only input checks.
    if for_import:
        if not truthy(data.get("uuid")):
            raise invalid_parameter('missing "uuid"', [FieldError("uuid", "MissingParameter")])
        published_at = data.get("published_at")
        if truthy(published_at) and not isinstance(published_at, str):
            raise invalid_parameter('invalid "published_at"', [FieldError("published_at", "Invalid")])
    # 3. Build the record, consuming the known keys.
    rec: dict[str, Any] = {}
    if for_import:
        rec["uuid"] = data.pop("uuid")
    else:
        rec["uuid"] = new_uuid if new_uuid is not None else str(uuid_mod.uuid4())
    for key in _COPIED_KEYS:
        if key in data:
            rec[key] = data.pop(key)
    public = data.pop("public", None)
    rec["public"] = public if truthy(public) else False
    disabled = data.pop("disabled", None)
    rec["disabled"] = disabled if truthy(disabled) else False
    rec["activated"] = False
    rec["state"] = "unactivated"
    if "acl" in data:
        rec["acl"] = data.pop("acl")
    for key in _COPIED_IF_TRUTHY:
        value = data.pop(key, None)
        if truthy(value):
            rec[key] = value
    for key in _COPIED_IF_PRESENT:
        if key in data:
            rec[key] = data.pop(key)
    if "tags" in rec:
        rec["tags_search"] = tags_search_array(rec["tags"])
    data.pop("channels", None)
    if channels is not None:
        rec["channels"] = list(channels)
    if rec.get("type") == "zvol":
        for key in ("nic_driver", "disk_driver", "cpu_type"):
            if key in data:
                rec[key] = data.pop(key)
        rec["image_size"] = (
            to_json_number(js_number(data.pop("image_size"))) if "image_size" in data else math.nan
        )
    if for_import:
        for key in ("published_at", "urn"):
            if truthy(data.get(key)):  # a falsy one stays, and is an extra parameter below
                rec[key] = data.pop(key)
    data.pop("files", None)
    data.pop("state", None)
    normalize_record(rec)
    # 4. Extra parameters.
    if data:
        names = list(data)
        raise invalid_parameter(
            "invalid extra parameters: " + ", ".join(f'"{k}"' for k in names),
            [FieldError(k, "Invalid") for k in names],
        )
    # 5. Validation.
    errs = record_errors(rec, cfg, require_channels=channels is not None)
    if errs:
        raise image_data_error(errs)
    return rec


def check_create_body(body: Any, cfg: DomainConfig, *, account: str | None) -> dict[str, Any]:
    """The CreateImage body checks before building: a body is required; with an ``account`` the owner
    defaults to it and must equal it; ``state`` may not be set; ``v`` defaults to 2; ``channels`` is
    dropped. Returns a new body dict."""
    if not isinstance(body, Mapping):
        raise validation_failed("missing request body", [FieldError("body", "MissingParameter")])
    data = dict(body)
    if account is not None:
        check_account(account)
        owner = data.get("owner")
        if not truthy(owner):
            data["owner"] = account
        elif owner != account:
            raise invalid_parameter(
                f'invalid owner: given owner, "{js_string(owner)}", does not match account, "{account}"',
                [FieldError("owner", "Invalid")],
            )
    if "state" in data:
        raise validation_failed(
            'invalid image data: "state"', [FieldError("state", "NotAllowed", "Parameter cannot be set")]
        )
    if "v" not in data:
        data["v"] = 2
    data.pop("channels", None)
    return data
