"""How the manifest checks report: the error list they append to, and values shown in messages
exactly as the reference server prints them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.serialize import compact_json
from imgapi_common.errors import FieldError
from imgapi_common.jsvalues import js_string

Errors = list[FieldError]
#: A check of one field of a record, called only when the field is present; appends its errors.
Check = Callable[[Mapping[str, Any], DomainConfig, Errors], None]


def show(v: Any) -> str:
    """A value as it appears in an error message."""
    if isinstance(v, str):
        return f'"{v}"'
    if v is None or isinstance(v, (bool, int, float)):
        return js_string(v)
    try:
        return compact_json(v)
    except TypeError:
        return js_string(v)


def invalid(errs: Errors, field: str, message: str | None = None) -> None:
    errs.append(FieldError(field, "Invalid", message))


def json_text(v: Any) -> str:
    """A value as the reference's ``%j`` prints it (``JSON.stringify(v)``)."""
    try:
        return compact_json(v)
    except TypeError:
        return js_string(v)


def as_object(v: Any) -> Mapping[str, Any] | None:
    """An object as the reference's key iteration sees it: arrays and strings are objects keyed by
    index; other scalars have no keys; ``None`` (``null``) is not an object."""
    if v is None:
        return None
    if isinstance(v, Mapping):
        return v
    if isinstance(v, (list, str)):
        return {str(i): x for i, x in enumerate(v)}
    return {}


def not_boolean(field: str, v: Any) -> str:
    return f'invalid value for "{field}" param: {show(v)} is not a boolean'
