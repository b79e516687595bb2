"""Manifest validation and construction of stored records (manifest.md §4, endpoints.md §2.3).

:func:`validate_record` checks a stored record (both passes of §4.2, per-field rules of §4.3,
the icon / tags-search pre-checks); :func:`build_record` turns a CreateImage / AdminImportImage
body into a stored record (§4.1); :func:`check_create_body` applies the CreateImage body steps.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import uuid as uuid_mod
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.image import check_account, is_activated
from catalog_service.domain.jsvalues import (
    boolish,
    is_js_integer,
    is_uuid,
    js_len,
    js_number,
    js_string,
    to_json_number,
    truthy,
)
from catalog_service.domain.serialize import compact_json
from catalog_service.domain.upgrade import upgrade_dataset_manifest
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, validation_failed

STATES = ("active", "unactivated", "disabled", "creating", "failed")
#: In the reference's order (its error message lists them so; lxd came last).
TYPES = ("zone-dataset", "lx-dataset", "zvol", "docker", "other", "lxd")
OSES = ("smartos", "linux", "windows", "bsd", "illumos", "other")
COMPRESSIONS = ("bzip2", "gzip", "xz", "none")
BOOTROMS = ("bios", "uefi")
#: Placeholder states, in which ``type``/``os`` may be the pseudo-value ``"null"``.
PLACEHOLDER_STATES = ("creating", "failed")

MAX_FILE_SIZE = 21474836480  # 20 GiB
MAX_ICON_SIZE = 131072  # 128 KiB
MAX_NAME_LENGTH = 1024
MAX_VERSION_LENGTH = 512
MAX_DESCRIPTION_LENGTH = 10240
MAX_URL_LENGTH = 1024
MAX_BILLING_TAG_LENGTH = 128
MAX_TAGS_JSON_LENGTH = 102400
MAX_TAG_SEARCH_VALUE_LENGTH = 100

#: Fields specific to zvol images (taken from create/import bodies only when ``type == "zvol"``).
ZVOL_FIELDS = ("nic_driver", "disk_driver", "cpu_type", "image_size")

_NAME_RE = re.compile(r"[A-Za-z0-9._/ -]+")
_VERSION_RE = re.compile(r"[A-Za-z0-9._/+-]+")
_PUBLISHED_AT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z")
_URL_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_PLATFORM_RE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")

Errors = list[FieldError]
_Check = Callable[[Mapping[str, Any], DomainConfig, Errors], None]


def _show(v: Any) -> str:
    """A value as it appears in an error message."""
    if isinstance(v, str):
        return f'"{v}"'
    if v is None or isinstance(v, (bool, int, float)):
        return js_string(v)
    try:
        return compact_json(v)
    except TypeError:
        return js_string(v)


def _invalid(errs: Errors, field: str, message: str | None = None) -> None:
    errs.append(FieldError(field, "Invalid", message))


def _s(v: Any) -> str:
    """A value as the reference's ``%s`` prints it (``String(v)``: ``null``, ``a,b``...)."""
    return js_string(v)


def _j(v: Any) -> str:
    """A value as the reference's ``%j`` prints it (``JSON.stringify(v)``)."""
    try:
        return compact_json(v)
    except TypeError:
        return js_string(v)


def _as_object(v: Any) -> Mapping[str, Any] | None:
    """An object as the reference's key iteration sees it: arrays and strings are objects keyed by
    index; other scalars have no keys; ``None`` (``null``) is not an object."""
    if v is None:
        return None
    if isinstance(v, Mapping):
        return v
    if isinstance(v, (list, str)):
        return {str(i): x for i, x in enumerate(v)}
    return {}


def _not_boolean(field: str, v: Any) -> str:
    return f'invalid value for "{field}" param: {_show(v)} is not a boolean'


# --- per-field checks (manifest.md §4.3); each is called only when the field is present ----------


def _check_v(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    n = js_number(rec["v"])  # Number(v): null, [] and "" are 0
    if math.isnan(n) or n < 0:
        _invalid(errs, "v", '"v" must be a positive integer')


def _check_uuid(field: str, rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    if not is_uuid(rec[field]):
        _invalid(errs, field)


def _check_name(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["name"]
    if not isinstance(v, str):
        _invalid(errs, "name", f"image name must be a string: {_show(v)}")
    elif js_len(v) > MAX_NAME_LENGTH:
        _invalid(errs, "name", f"image name is too long (max {MAX_NAME_LENGTH} characters)")
    elif _NAME_RE.fullmatch(v) is None:
        _invalid(
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
        _invalid(errs, "version", f"image version must be a string: {_show(v)}")
        return
    if js_len(v) > MAX_VERSION_LENGTH and isinstance(rec["version"], str):
        _invalid(errs, "version", f"image version is too long (max {MAX_VERSION_LENGTH} characters)")
    elif _VERSION_RE.fullmatch(v) is None:
        _invalid(
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
        _invalid(errs, "description", f"image description must be a string: {_show(v)}")
    elif js_len(v) > MAX_DESCRIPTION_LENGTH:
        _invalid(
            errs, "description", f"image description is too long (max {MAX_DESCRIPTION_LENGTH} characters)"
        )


def _check_url(field: str, rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec[field]
    if not isinstance(v, str):
        _invalid(errs, field, f"image {field} must be a string: {_show(v)}")
        return
    label = "EULA" if field == "eula" else field
    m = _URL_SCHEME_RE.match(v)
    if m is None or m.group(1).lower() not in ("http", "https"):
        _invalid(errs, field, f"invalid image {label} URL protocol")
    elif js_len(v) > MAX_URL_LENGTH:
        _invalid(errs, field, f"image {label} URL is too long (max {MAX_URL_LENGTH} characters)")


def _check_boolish(field: str, rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    if boolish(rec[field]) is None:
        _invalid(errs, field, _not_boolean(field, rec[field]))


def _check_published_at(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["published_at"]
    if truthy(v):
        if not isinstance(v, str) or _PUBLISHED_AT_RE.fullmatch(v) is None:
            _invalid(errs, "published_at", 'published_at date not in "YYYY-MM-DDTHH:MM:SS(.SSS)Z" format')
    elif is_activated(rec):
        errs.append(
            FieldError(
                "published_at", "MissingParameter", 'if activated is "true" published_at must be present'
            )
        )


def _check_public(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    b = boolish(rec["public"])
    if b is None:
        _invalid(errs, "public", _not_boolean("public", rec["public"]))
    elif cfg.mode == "public" and not b:
        _invalid(errs, "public", "private images are not allowed on a public Images API")
    elif cfg.mode == "private" and b:
        _invalid(errs, "public", "public images are not allowed on a private Images API")


def _check_state(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["state"]
    if not (isinstance(v, str) and v in STATES):
        _invalid(errs, "state")


def _check_enum(
    field: str, values: tuple[str, ...], rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors
) -> None:
    v = rec[field]
    if isinstance(v, str) and (v in values or (v == "null" and rec.get("state") in PLACEHOLDER_STATES)):
        return
    _invalid(errs, field, f'invalid image {field}, "{_s(v)}", must be one of: {", ".join(values)}')


def _check_zvol_string(field: str, rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec[field]
    if truthy(v) and rec.get("type") != "zvol":
        # (sic: the reference's wording, double space included for disk_driver)
        gap = "  " if field == "disk_driver" else " "
        _invalid(
            errs,
            field,
            f'invalid image {field}: "{_s(v)}" (cannot have a value{gap}when image type is zvol)',
        )
    elif not isinstance(v, str):
        _invalid(errs, field, f'invalid image {field}: "{_s(v)}" (must be a string)')


def _check_image_size(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["image_size"]
    if truthy(v) and rec.get("type") != "zvol":
        _invalid(
            errs,
            "image_size",
            f'invalid image image_size: "{_s(v)}" (cannot have a value when image type is zvol)',
        )
    elif not is_js_integer(js_number(v)):
        _invalid(errs, "image_size", f'invalid image image_size: "{_s(v)}" (must be a positive integer)')


def _check_channels(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["channels"]
    if not cfg.channels_enabled:
        _invalid(errs, "channels", 'invalid image "channels": this server does not support channels')
    elif not (isinstance(v, list) and all(isinstance(c, str) for c in v)):
        _invalid(errs, "channels", f'invalid image "channels": not an array of strings: {_show(v)}')


def _check_error(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["error"]
    if not (v is None or isinstance(v, (Mapping, list))):
        _invalid(errs, "error", f'invalid image "error" (not an object): {_j(v)}')


def _check_files(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["files"]
    if not isinstance(v, list):
        _invalid(errs, "files", f'invalid image "files": not an array: {_show(v)}')
        return
    limit = 2 if rec.get("type") == "lxd" else 1
    if len(v) > limit:
        _invalid(errs, "files", f'invalid image "files": too many files (max {limit})')
        return
    for i, f in enumerate(v):
        entry: Mapping[str, Any] = f if isinstance(f, Mapping) else {}
        for key in ("sha1", "size"):
            if not truthy(entry.get(key)):
                _invalid(errs, "files", f'invalid image "files": file {i} is missing "{key}"')
        c = entry.get("compression")
        if not (isinstance(c, str) and c in COMPRESSIONS):
            _invalid(
                errs,
                "files",
                f'invalid image "files": file {i} "compression", {_show(c)}, must be one of: '
                f"{', '.join(COMPRESSIONS)}",
            )


def _check_acl(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["acl"]
    if isinstance(v, str):
        v = [v]  # stored bare strings are tolerated (normalized, §4.7)
    if not isinstance(v, list):
        _invalid(errs, "acl", f'invalid image "acl" (not an array): {_s(v)}')
        return
    for i, item in enumerate(v):
        if not is_uuid(item):
            _invalid(errs, "acl", f'invalid image "acl" (item {i} is not a UUID): {_s(item)}')
            return


def _check_billing_tags(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["billing_tags"]
    if not truthy(v):
        return  # the reference only validates a truthy value (and never shows a falsy one)
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        _invalid(errs, "billing_tags", f'invalid image "billing_tags" (not an array): {_s(v)}')
        return
    for item in v:
        if not isinstance(item, str) or js_len(item) > MAX_BILLING_TAG_LENGTH:
            # (sic: the reference's wording, space before the colon)
            _invalid(errs, "billing_tags", f'invalid image "billing_tags" entry : {_s(item)}')


def _check_users(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["users"]
    if not isinstance(v, list):
        _invalid(errs, "users", f'invalid image "users" (not an array): {_j(v)}')
        return
    for item in v:
        if not (isinstance(item, Mapping) and list(item.keys()) == ["name"]):
            _invalid(errs, "users", f'invalid image "users" entry: {_j(item)}')


def _check_traits(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["traits"]
    if not isinstance(v, (Mapping, list)):  # (an array is an object: its keys are "0", "1"...)
        _invalid(errs, "traits", f'invalid image "traits" (not an object): {_j(v)}')
        return
    items = v.items() if isinstance(v, Mapping) else ((str(i), x) for i, x in enumerate(v))
    for key, value in items:
        if not isinstance(value, (str, bool, list)):
            _invalid(errs, "traits", f'invalid image "traits" entry: ({key}, {_j(value)})')


def _check_tags(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["tags"]
    if not isinstance(v, Mapping):
        _invalid(errs, "tags", f'invalid image "tags" (not an object): {_j(v)}')
    elif js_len(compact_json(v)) > MAX_TAGS_JSON_LENGTH:
        _invalid(
            errs, "tags", f'image "tags" string length is too long, max {MAX_TAGS_JSON_LENGTH} characters'
        )


def _check_inherited_directories(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    v = rec["inherited_directories"]
    field = "inherited_directories"
    if rec.get("type") != "zone-dataset":
        _invalid(errs, field, 'invalid image "inherited_directories": only allowed on "zone-dataset" images')
    elif not (isinstance(v, list) and all(isinstance(d, str) for d in v)):
        _invalid(errs, field, f'invalid image "inherited_directories": not an array of strings: {_show(v)}')


# --- requirements (§4.5) --------------------------------------------------------------------------

_REQUIREMENT_KEYS = ("networks", "brand", "ssh_key", "min_ram", "max_ram", "min_platform", "max_platform")
_REQUIREMENT_KEYS_ALL = (*_REQUIREMENT_KEYS, "bootrom")


def is_platform_stamp(v: Any) -> bool:
    """A platform build stamp ``YYYYMMDDTHHMMSSZ`` (year >= 2012)."""
    if not isinstance(v, str) or len(v) != 16:
        return False
    m = _PLATFORM_RE.fullmatch(v)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups())
    return (
        year >= 2012 and 1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 59
    )


def _is_json_int(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and is_js_integer(float(v))


def _check_requirements(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    """§4.5, as the reference iterates the keys of a copy of the value: a number or boolean has
    none (accepted), a string or an array has index keys (each an unsupported requirement)."""
    reqs = _as_object(rec["requirements"])
    if reqs is None:
        _invalid(errs, "requirements", f'invalid image "requirements" (not an object): {_j(None)}')
        return

    networks = reqs.get("networks")
    if truthy(networks):
        field = "requirements.networks"
        if not isinstance(networks, list):
            _invalid(errs, field, f'invalid image "{field}" (not an array): {_j(networks)}')
        else:
            for n in networks:
                if not (isinstance(n, Mapping) and sorted(n.keys()) == ["description", "name"]):
                    _invalid(errs, field, f'invalid image "{field}" entry: {_j(n)}')

    brand = reqs.get("brand")
    if truthy(brand) and not isinstance(brand, str):
        field = "requirements.brand"
        _invalid(errs, field, f'invalid image "{field}" (not a string): {_j(brand)}')

    ssh_key = reqs.get("ssh_key")
    if truthy(ssh_key) and ssh_key is not True:
        field = "requirements.ssh_key"
        _invalid(errs, field, f'invalid image "{field}" (not a boolean): {_j(ssh_key)}')

    rams: dict[str, Any] = {}
    for key in ("min_ram", "max_ram"):
        value = reqs.get(key)
        if not truthy(value):
            continue
        if _is_json_int(value):
            rams[key] = value
        else:
            field = f"requirements.{key}"
            _invalid(errs, field, f'invalid image "{field}" (not a positive integer): {_j(value)}')
    if len(rams) == 2 and rams["max_ram"] < rams["min_ram"]:
        _invalid(
            errs,
            "requirements.max_ram",
            f"min_ram must be <= max_ram, but:min_ram={_s(rams['min_ram'])}, max_ram={_s(rams['max_ram'])}",
        )

    for key in ("min_platform", "max_platform"):
        value = reqs.get(key)
        if not truthy(value):
            continue
        field = f"requirements.{key}"
        entries = _as_object(value) if isinstance(value, (Mapping, list)) else None
        if not entries:
            _invalid(errs, field, f'invalid image "{field}" (not an object): {_j(value)}')
            continue
        for sdc_version, stamp in entries.items():
            if not is_platform_stamp(stamp):
                _invalid(
                    errs,
                    field,
                    f'invalid image "{field}" entry: "{sdc_version}: {_s(stamp)}" not a valid platform version',
                )

    bootrom = reqs.get("bootrom")
    if truthy(bootrom):
        field = "requirements.bootrom"
        if not truthy(brand):
            errs.append(
                FieldError(field, "MissingParameter", '"requirements.bootrom" requires "requirements.brand"')
            )
        elif brand != "bhyve":
            _invalid(errs, field, f'invalid image "{field}": only allowed with the "bhyve" brand')
        elif not (isinstance(bootrom, str) and bootrom in BOOTROMS):
            _invalid(
                errs,
                field,
                f'invalid image "{field}", {_show(bootrom)}, must be one of: {", ".join(BOOTROMS)}',
            )

    # unknown requirements last, as the reference reports what is left once the known are checked
    for key in reqs:
        if key not in _REQUIREMENT_KEYS_ALL:
            _invalid(errs, key, f'unsupported requirement "{key}"')


# --- the two passes (§4.2) ------------------------------------------------------------------------

#: Per-field checks. The shared ones are ``partial`` applications of module-level functions, not
#: closures made at import: the function is looked up on every call, which lets scripts/mutation
#: mutate it (a closure built at import would always be the original code).
_CHECKS: dict[str, _Check] = {
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
    "requirements": _check_requirements,
    "users": _check_users,
    "billing_tags": _check_billing_tags,
    "traits": _check_traits,
    "tags": _check_tags,
    "generate_passwords": partial(_check_boolish, "generate_passwords"),
    "inherited_directories": _check_inherited_directories,
}

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
        _invalid(errs, "tags", 'invalid raw image "tags": not an array of strings')
    icon = rec.get("icon")
    if truthy(icon):
        obj: Mapping[str, Any] = icon if isinstance(icon, Mapping) else {}
        for key in ("contentMD5", "size", "contentType"):
            if not truthy(obj.get(key)):
                _invalid(errs, "icon", f'invalid image "icon": icon missing "{key}" field')
                break


def _validate(rec: Mapping[str, Any], cfg: DomainConfig, *, require_channels: bool) -> Errors:
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
            _CHECKS[field](rec, cfg, errs)
        elif _required_when(field, rec):
            errs.append(FieldError(field, "MissingParameter"))
    for field in optional:
        if field in rec:
            _CHECKS[field](rec, cfg, errs)
    return errs


def validate_record(rec: Mapping[str, Any], cfg: DomainConfig) -> list[FieldError]:
    """All validation errors of a stored record for this server (manifest.md §4.2-4.5); [] if valid."""
    return _validate(rec, cfg, require_channels=True)


def image_data_error(errors: Sequence[FieldError]) -> ImgapiError:
    """The ``ValidationFailed`` error for a failed manifest validation."""
    return validation_failed("invalid image data: " + ", ".join(e.field for e in errors), errors)


# --- building records -----------------------------------------------------------------------------


def tags_search_array(tags: Any) -> list[str]:
    """The ``KEY=V`` search strings of a tags object (manifest.md §4.6); [] for a non-object."""
    if not isinstance(tags, Mapping):
        return []
    out: list[str] = []
    for key, value in tags.items():
        if isinstance(value, str):
            text = value if js_len(value) <= MAX_TAG_SEARCH_VALUE_LENGTH else ""
        elif isinstance(value, (bool, int, float)):
            text = js_string(value)
        else:
            text = ""
        out.append(f"{js_string(key)}={text}")
    return out


def normalize_record(rec: dict[str, Any]) -> dict[str, Any]:
    """§4.7 normalizations, in place: ``acl``/``billing_tags`` bare strings become arrays, absent
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
    """A new stored record from a CreateImage / AdminImportImage body (manifest.md §4.1).

    Raises ``InvalidParameter`` (missing import uuid, bad ``published_at``, extra parameters) or
    ``ValidationFailed``. Owner/origin existence is not checked. The body ``channels`` is always
    discarded; ``channels`` (the request channel list) is stored when given. On a channel server
    called without ``channels`` the record is validated without the ``channels`` requirement and
    the caller must add them before storing.
    """
    data: dict[str, Any] = copy.deepcopy(dict(body))
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
    errs = _validate(rec, cfg, require_channels=channels is not None)
    if errs:
        raise image_data_error(errs)
    return rec


def check_create_body(body: Any, cfg: DomainConfig, *, account: str | None) -> dict[str, Any]:
    """CreateImage body steps 1-4 (endpoints.md §2.3). Returns a new body dict."""
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
