"""The per-field manifest checks, one per field a record may hold, in :data:`FIELD_CHECKS`. Each is
called only when its field is present and appends its errors (:mod:`.validation` decides which
fields are required)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.field_errors import Check, Errors, invalid, json_text, not_boolean, show
from catalog_service.domain.image import is_activated
from catalog_service.domain.requirements import check_requirements
from catalog_service.domain.serialize import compact_json
from imgapi_common.errors import FieldError
from imgapi_common.jsvalues import (
    boolish,
    is_js_integer,
    is_uuid,
    js_len,
    js_number,
    js_string,
    truthy,
)
from imgapi_common.manifest_fields import (
    COMPRESSIONS,
    MAX_BILLING_TAG_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TAGS_JSON_LENGTH,
    MAX_URL_LENGTH,
    MAX_VERSION_LENGTH,
    NAME_PATTERN,
    OSES,
    PLACEHOLDER_STATES,
    PUBLISHED_AT_PATTERN,
    STATES,
    TYPES,
    VERSION_PATTERN,
)

NAME_RE = re.compile(NAME_PATTERN)
VERSION_RE = re.compile(VERSION_PATTERN)
PUBLISHED_AT_RE = re.compile(PUBLISHED_AT_PATTERN)
_URL_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _check_v(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    n = js_number(rec["v"])  # Number(v): null, [] and "" are 0
    if math.isnan(n) or n < 0:
        invalid(errs, "v", '"v" must be a positive integer')


def _check_uuid(field: str, rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    if not is_uuid(rec[field]):
        invalid(errs, field)


def _check_name(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["name"]
    if not isinstance(v, str):
        invalid(errs, "name", f"image name must be a string: {show(v)}")
    elif js_len(v) > MAX_NAME_LENGTH:
        invalid(errs, "name", f"image name is too long (max {MAX_NAME_LENGTH} characters)")
    elif NAME_RE.fullmatch(v) is None:
        invalid(
            errs,
            "name",
            "image name has invalid characters (only alpha-numeric characters and "
            '" ", ".", "-", "_" and "/" are allowed)',
        )


def _check_version(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["version"]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = js_string(v)  # a number has no length; its text must match the pattern
    elif not isinstance(v, str):
        invalid(errs, "version", f"image version must be a string: {show(v)}")
        return
    if js_len(v) > MAX_VERSION_LENGTH and isinstance(rec["version"], str):
        invalid(errs, "version", f"image version is too long (max {MAX_VERSION_LENGTH} characters)")
    elif VERSION_RE.fullmatch(v) is None:
        invalid(
            errs,
            "version",
            "image version has invalid characters (only alpha-numeric characters and "
            '".", "-", "_", "/" and "+" are allowed)',
        )


def _check_description(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["description"]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return  # a number has no length: the reference accepts it
    if not isinstance(v, str):
        invalid(errs, "description", f"image description must be a string: {show(v)}")
    elif js_len(v) > MAX_DESCRIPTION_LENGTH:
        invalid(
            errs, "description", f"image description is too long (max {MAX_DESCRIPTION_LENGTH} characters)"
        )


def _check_url(field: str, rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec[field]
    if not isinstance(v, str):
        invalid(errs, field, f"image {field} must be a string: {show(v)}")
        return
    label = "EULA" if field == "eula" else field
    m = _URL_SCHEME_RE.match(v)
    if m is None or m.group(1).lower() not in ("http", "https"):
        invalid(errs, field, f"invalid image {label} URL protocol")
    elif js_len(v) > MAX_URL_LENGTH:
        invalid(errs, field, f"image {label} URL is too long (max {MAX_URL_LENGTH} characters)")


def _check_boolish(field: str, rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    if boolish(rec[field]) is None:
        invalid(errs, field, not_boolean(field, rec[field]))


def _check_published_at(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["published_at"]
    if truthy(v):
        if not isinstance(v, str) or PUBLISHED_AT_RE.fullmatch(v) is None:
            invalid(errs, "published_at", 'published_at date not in "YYYY-MM-DDTHH:MM:SS(.SSS)Z" format')
    elif is_activated(rec):
        errs.append(
            FieldError(
                "published_at", "MissingParameter", 'if activated is "true" published_at must be present'
            )
        )


def _check_public(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    b = boolish(rec["public"])
    if b is None:
        invalid(errs, "public", not_boolean("public", rec["public"]))
    elif cfg.mode == "public" and not b:
        invalid(errs, "public", "private images are not allowed on a public Images API")
    elif cfg.mode == "private" and b:
        invalid(errs, "public", "public images are not allowed on a private Images API")


def _check_state(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["state"]
    if not (isinstance(v, str) and v in STATES):
        invalid(errs, "state")


def _check_enum(
    field: str, values: tuple[str, ...], rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors
) -> None:
    v = rec[field]
    if isinstance(v, str) and (v in values or (v == "null" and rec.get("state") in PLACEHOLDER_STATES)):
        return
    invalid(errs, field, f'invalid image {field}, "{js_string(v)}", must be one of: {", ".join(values)}')


def _check_zvol_string(field: str, rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec[field]
    if truthy(v) and rec.get("type") != "zvol":
        # (sic: the reference's wording, double space included for disk_driver)
        gap = "  " if field == "disk_driver" else " "
        invalid(
            errs,
            field,
            f'invalid image {field}: "{js_string(v)}" (cannot have a value{gap}when image type is zvol)',
        )
    elif not isinstance(v, str):
        invalid(errs, field, f'invalid image {field}: "{js_string(v)}" (must be a string)')


def _check_image_size(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["image_size"]
    if truthy(v) and rec.get("type") != "zvol":
        invalid(
            errs,
            "image_size",
            f'invalid image image_size: "{js_string(v)}" (cannot have a value when image type is zvol)',
        )
    elif not is_js_integer(js_number(v)):
        invalid(
            errs, "image_size", f'invalid image image_size: "{js_string(v)}" (must be a positive integer)'
        )


def _check_channels(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["channels"]
    if not cfg.channels_enabled:
        invalid(errs, "channels", 'invalid image "channels": this server does not support channels')
    elif not (isinstance(v, list) and all(isinstance(c, str) for c in v)):
        invalid(errs, "channels", f'invalid image "channels": not an array of strings: {show(v)}')


def _check_error(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["error"]
    if not (v is None or isinstance(v, (Mapping, list))):
        invalid(errs, "error", f'invalid image "error" (not an object): {json_text(v)}')


def _check_files(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["files"]
    if not isinstance(v, list):
        invalid(errs, "files", f'invalid image "files": not an array: {show(v)}')
        return
    limit = 2 if rec.get("type") == "lxd" else 1
    if len(v) > limit:
        invalid(errs, "files", f'invalid image "files": too many files (max {limit})')
        return
    for i, f in enumerate(v):
        entry: Mapping[str, Any] = f if isinstance(f, Mapping) else {}
        for key in ("sha1", "size"):
            if not truthy(entry.get(key)):
                invalid(errs, "files", f'invalid image "files": file {i} is missing "{key}"')
        c = entry.get("compression")
        if not (isinstance(c, str) and c in COMPRESSIONS):
            invalid(
                errs,
                "files",
                f'invalid image "files": file {i} "compression", {show(c)}, must be one of: '
                f"{', '.join(COMPRESSIONS)}",
            )


def _check_acl(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["acl"]
    if isinstance(v, str):
        v = [v]  # a stored bare string is tolerated (normalize_record makes it an array)
    if not isinstance(v, list):
        invalid(errs, "acl", f'invalid image "acl" (not an array): {js_string(v)}')
        return
    for i, item in enumerate(v):
        if not is_uuid(item):
            invalid(errs, "acl", f'invalid image "acl" (item {i} is not a UUID): {js_string(item)}')
            return


def _check_billing_tags(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["billing_tags"]
    if not truthy(v):
        return  # the reference only validates a truthy value (and never shows a falsy one)
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        invalid(errs, "billing_tags", f'invalid image "billing_tags" (not an array): {js_string(v)}')
        return
    for item in v:
        if not isinstance(item, str) or js_len(item) > MAX_BILLING_TAG_LENGTH:
            # (sic: the reference's wording, space before the colon)
            invalid(errs, "billing_tags", f'invalid image "billing_tags" entry : {js_string(item)}')


def _check_users(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["users"]
    if not isinstance(v, list):
        invalid(errs, "users", f'invalid image "users" (not an array): {json_text(v)}')
        return
    for item in v:
        if not (isinstance(item, Mapping) and list(item.keys()) == ["name"]):
            invalid(errs, "users", f'invalid image "users" entry: {json_text(item)}')


def _check_traits(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["traits"]
    if not isinstance(v, (Mapping, list)):  # (an array is an object: its keys are "0", "1"...)
        invalid(errs, "traits", f'invalid image "traits" (not an object): {json_text(v)}')
        return
    items = v.items() if isinstance(v, Mapping) else ((str(i), x) for i, x in enumerate(v))
    for key, value in items:
        if not isinstance(value, (str, bool, list)):
            invalid(errs, "traits", f'invalid image "traits" entry: ({key}, {json_text(value)})')


def _check_tags(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["tags"]
    if not isinstance(v, Mapping):
        invalid(errs, "tags", f'invalid image "tags" (not an object): {json_text(v)}')
    elif js_len(compact_json(v)) > MAX_TAGS_JSON_LENGTH:
        invalid(
            errs, "tags", f'image "tags" string length is too long, max {MAX_TAGS_JSON_LENGTH} characters'
        )


def _check_inherited_directories(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["inherited_directories"]
    field = "inherited_directories"
    if rec.get("type") != "zone-dataset":
        invalid(errs, field, 'invalid image "inherited_directories": only allowed on "zone-dataset" images')
    elif not (isinstance(v, list) and all(isinstance(d, str) for d in v)):
        invalid(errs, field, f'invalid image "inherited_directories": not an array of strings: {show(v)}')


#: Per-field checks. The shared ones are ``partial`` applications of module-level functions, not
#: closures made at import: the function is looked up on every call, which lets scripts/mutation
#: mutate it (a closure built at import would always be the original code).
FIELD_CHECKS: dict[str, Check] = {
    "v": _check_v,
    "uuid": partial(_check_uuid, "uuid"),
    "owner": partial(_check_uuid, "owner"),
    "name": _check_name,
    "version": _check_version,
    "disabled": partial(_check_boolish, "disabled"),
    "activated": partial(_check_boolish, "activated"),
    "published_at": _check_published_at,
    "public": _check_public,
    "state": _check_state,
    "type": partial(_check_enum, "type", TYPES),
    "os": partial(_check_enum, "os", OSES),
    "files": _check_files,
    "nic_driver": partial(_check_zvol_string, "nic_driver"),
    "disk_driver": partial(_check_zvol_string, "disk_driver"),
    "cpu_type": partial(_check_zvol_string, "cpu_type"),
    "image_size": _check_image_size,
    "channels": _check_channels,
    "description": _check_description,
    "homepage": partial(_check_url, "homepage"),
    "eula": partial(_check_url, "eula"),
    "origin": partial(_check_uuid, "origin"),
    "error": _check_error,
    "acl": _check_acl,
    "requirements": check_requirements,
    "users": _check_users,
    "billing_tags": _check_billing_tags,
    "traits": _check_traits,
    "tags": _check_tags,
    "generate_passwords": partial(_check_boolish, "generate_passwords"),
    "inherited_directories": _check_inherited_directories,
}
