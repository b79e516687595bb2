"""The two sharing rules both the REST edge and the catalog apply: an ACL change names accounts by
UUID, and a channel is one of the server's channels. The edge checks a request body with them
before it builds the typed catalog request; the catalog checks every caller's values with them."""

from __future__ import annotations

from typing import Any

from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, validation_failed
from imgapi_common.jsvalues import is_uuid, js_string


def check_uuid_list(field: str, body: Any) -> list[str]:
    """``body`` as a list of account UUIDs; refuses a non-array and the first item that is not a
    UUID string (as JavaScript prints it)."""
    if not isinstance(body, list):
        raise invalid_parameter(f'invalid image "{field}" (not an array)', [FieldError(field, "Invalid")])
    for i, item in enumerate(body):
        if not is_uuid(item):
            raise invalid_parameter(
                f'invalid image "{field}" (item {i} is not a UUID): {js_string(item)}',
                [FieldError(field, "Invalid")],
            )
    return body


def unknown_channel(name: Any, *, given: bool = True) -> ImgapiError:
    """The error for a channel name that is not one of the server's (``given``: the request named
    one at all; else JavaScript's ``undefined`` is shown)."""
    shown = js_string(name) if given else "undefined"
    return validation_failed(f"unknown channel: {shown}", [FieldError("channel", "Invalid")])
