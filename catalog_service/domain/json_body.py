"""JSON request bodies: strict parsing (no NaN/Infinity, JavaScript number and key order
semantics), bounded nesting, and the lone-surrogate rule for what may be stored."""

from __future__ import annotations

import json
from typing import Any

import orjson

from imgapi_common.errors import ImgapiError
from imgapi_common.json_depth import check_json_depth
from imgapi_common.jsvalues import js_key_order, js_parse_int


def _reject_constant(name: str) -> Any:
    raise ImgapiError("InvalidContent", f"Invalid JSON: {name} is not a JSON value")


def has_lone_surrogate(value: Any) -> bool:
    """Whether a string (a key or a value) anywhere in ``value`` holds a lone UTF-16 surrogate."""
    try:
        # orjson writes UTF-8 and refuses any str that is not valid Unicode text: when it
        # succeeds, no string has a surrogate (the common case, in a few microseconds).
        orjson.dumps(value)
        return False
    except TypeError:  # orjson.JSONEncodeError: a surrogate, or a value orjson does not write
        return lone_surrogate_walk(value)


def lone_surrogate_walk(value: Any) -> bool:
    """:func:`has_lone_surrogate` by walking every string (any value, e.g. integers beyond 64 bits)."""
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def lone_surrogate_error() -> ImgapiError:
    """A valid record holding a lone UTF-16 surrogate cannot be stored: the database and the
    services' protobuf strings carry UTF-8 only (docs/compatibility.md)."""
    return ImgapiError("InvalidContent", "Invalid JSON: a string holds a lone UTF-16 surrogate")


def parse_json(text: str) -> tuple[bool, Any]:
    """(present, value): an empty text is an absent body. Strict JSON (no NaN/Infinity)."""
    if text == "":
        return False, None
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_int=js_parse_int, object_pairs_hook=js_key_order
        )
    except RecursionError:
        raise ImgapiError("InvalidContent", "Invalid JSON: nested too deeply") from None
    # Lone surrogates (escaped ``\\ud800``) are values like any other here: validation sees them as
    # the reference does, and only storing one is refused (:func:`lone_surrogate_error`).
    check_json_depth(value)
    return True, value
