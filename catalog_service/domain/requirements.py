"""The ``requirements`` field: the keys it may hold and their values (networks, brand, ssh_key,
RAM bounds, platform bounds, bootrom)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.field_errors import Errors, as_object, invalid, json_text, show
from imgapi_common.errors import FieldError
from imgapi_common.jsvalues import is_js_integer, js_string, truthy
from imgapi_common.manifest_fields import BOOTROMS

_PLATFORM_RE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")

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


def check_requirements(rec: Mapping[str, Any], cfg: DomainConfig, errs: Errors) -> None:
    """``requirements``, checked as the reference server iterates the keys of a copy of the value: a
    number or boolean has none (accepted), a string or an array has index keys (each an unsupported
    requirement)."""
    reqs = as_object(rec["requirements"])
    if reqs is None:
        invalid(errs, "requirements", f'invalid image "requirements" (not an object): {json_text(None)}')
        return

    networks = reqs.get("networks")
    if truthy(networks):
        field = "requirements.networks"
        if not isinstance(networks, list):
            invalid(errs, field, f'invalid image "{field}" (not an array): {json_text(networks)}')
        else:
            for n in networks:
                if not (isinstance(n, Mapping) and sorted(n.keys()) == ["description", "name"]):
                    invalid(errs, field, f'invalid image "{field}" entry: {json_text(n)}')

    brand = reqs.get("brand")
    if truthy(brand) and not isinstance(brand, str):
        field = "requirements.brand"
        invalid(errs, field, f'invalid image "{field}" (not a string): {json_text(brand)}')

    ssh_key = reqs.get("ssh_key")
    if truthy(ssh_key) and ssh_key is not True:
        field = "requirements.ssh_key"
        invalid(errs, field, f'invalid image "{field}" (not a boolean): {json_text(ssh_key)}')

    rams: dict[str, Any] = {}
    for key in ("min_ram", "max_ram"):
        value = reqs.get(key)
        if not truthy(value):
            continue
        if _is_json_int(value):
            rams[key] = value
        else:
            field = f"requirements.{key}"
            invalid(errs, field, f'invalid image "{field}" (not a positive integer): {json_text(value)}')
    if len(rams) == 2 and rams["max_ram"] < rams["min_ram"]:
        invalid(
            errs,
            "requirements.max_ram",
            f"min_ram must be <= max_ram, but:min_ram={js_string(rams['min_ram'])}, max_ram={js_string(rams['max_ram'])}",
        )

    for key in ("min_platform", "max_platform"):
        value = reqs.get(key)
        if not truthy(value):
            continue
        field = f"requirements.{key}"
        entries = as_object(value) if isinstance(value, (Mapping, list)) else None
        if not entries:
            invalid(errs, field, f'invalid image "{field}" (not an object): {json_text(value)}')
            continue
        for sdc_version, stamp in entries.items():
            if not is_platform_stamp(stamp):
                invalid(
                    errs,
                    field,
                    f'invalid image "{field}" entry: "{sdc_version}: {js_string(stamp)}" not a valid platform version',
                )

    bootrom = reqs.get("bootrom")
    if truthy(bootrom):
        field = "requirements.bootrom"
        if not truthy(brand):
            errs.append(
                FieldError(field, "MissingParameter", '"requirements.bootrom" requires "requirements.brand"')
            )
        elif brand != "bhyve":
            invalid(errs, field, f'invalid image "{field}": only allowed with the "bhyve" brand')
        elif not (isinstance(bootrom, str) and bootrom in BOOTROMS):
            invalid(
                errs,
                field,
                f'invalid image "{field}", {show(bootrom)}, must be one of: {", ".join(BOOTROMS)}',
            )

    # unknown requirements last, as the reference reports what is left once the known are checked
    for key in reqs:
        if key not in _REQUIREMENT_KEYS_ALL:
            invalid(errs, key, f'unsupported requirement "{key}"')
