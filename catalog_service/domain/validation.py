"""Validation of a stored record: every field present is checked, the required ones must be.

Pass 1 checks the required fields (a missing one is ``MissingParameter`` when it is required for
this record), pass 2 the optional ones present; the icon and ``tags_search`` pre-checks come first.
The error order is the order of these lists, as clients see it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.field_checks import FIELD_CHECKS
from catalog_service.domain.field_errors import Errors, invalid
from catalog_service.domain.image import is_activated
from imgapi_common.errors import FieldError, ImgapiError, validation_failed
from imgapi_common.jsvalues import truthy
from imgapi_common.manifest_fields import ZVOL_FIELDS

#: Pass 1, the required list (``channels`` appended on a channel server).
REQUIRED_FIELDS = (
    "v",
    "uuid",
    "owner",
    "name",
    "version",
    "disabled",
    "activated",
    "published_at",
    "public",
    "state",
    "type",
    "os",
    "files",
    *ZVOL_FIELDS,
)
#: Pass 1 for a ``creating`` placeholder in ``dc`` mode.
MINIMAL_REQUIRED_FIELDS = ("v", "uuid", "name", "version", "type", "os")
#: Pass 2 (``channels`` appended when not required). ``icon`` is covered by the pre-check and
#: ``urn`` is never validated.
OPTIONAL_FIELDS = (
    "description",
    "homepage",
    "eula",
    "origin",
    "error",
    "acl",
    "requirements",
    "users",
    "billing_tags",
    "traits",
    "tags",
    "generate_passwords",
    "inherited_directories",
)


def _required_when(field: str, rec: Mapping[str, Any]) -> bool:
    """Whether an absent pass-1 field is reported as ``MissingParameter``."""
    if field in ("published_at", "files"):
        return is_activated(rec)
    if field in ZVOL_FIELDS:
        return rec.get("type") == "zvol"
    return True


def _pre_checks(rec: Mapping[str, Any], errs: Errors) -> None:
    search = rec.get("tags_search")
    if truthy(search) and not isinstance(search, list):
        invalid(errs, "tags", 'invalid raw image "tags": not an array of strings')
    icon = rec.get("icon")
    if truthy(icon):
        obj: Mapping[str, Any] = icon if isinstance(icon, Mapping) else {}
        for key in ("contentMD5", "size", "contentType"):
            if not truthy(obj.get(key)):
                invalid(errs, "icon", f'invalid image "icon": icon missing "{key}" field')
                break


def record_errors(rec: Mapping[str, Any], cfg: DomainConfig, *, require_channels: bool) -> Errors:
    errs: Errors = []
    _pre_checks(rec, errs)
    if cfg.mode == "dc" and rec.get("state") == "creating":
        required: tuple[str, ...] = MINIMAL_REQUIRED_FIELDS
        optional: tuple[str, ...] = OPTIONAL_FIELDS
    else:
        required = REQUIRED_FIELDS
        optional = OPTIONAL_FIELDS
    if cfg.channels_enabled:
        if require_channels:
            required = (*required, "channels")
        # else: the caller adds channels after building (build_record without ``channels=``)
    else:
        optional = (*optional, "channels")
    for field in required:
        if field in rec:
            FIELD_CHECKS[field](rec, cfg, errs)
        elif _required_when(field, rec):
            errs.append(FieldError(field, "MissingParameter"))
    for field in optional:
        if field in rec:
            FIELD_CHECKS[field](rec, cfg, errs)
    return errs


def validate_record(rec: Mapping[str, Any], cfg: DomainConfig) -> list[FieldError]:
    """All validation errors of a stored record for this server, in detection order; [] if valid."""
    return record_errors(rec, cfg, require_channels=True)


def image_data_error(errors: Sequence[FieldError]) -> ImgapiError:
    """The ``ValidationFailed`` error for a failed manifest validation."""
    return validation_failed("invalid image data: " + ", ".join(e.field for e in errors), errors)
