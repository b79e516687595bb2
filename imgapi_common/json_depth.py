"""How deep a JSON request body may nest. Deeper documents are refused as invalid content before
anything else looks at them (walking one must not exhaust a stack or the CPU)."""

from __future__ import annotations

from typing import Any

from imgapi_common.errors import ImgapiError

MAX_JSON_DEPTH = 64


def check_json_depth(value: Any) -> None:
    """Refuse (400 InvalidContent) a value nested deeper than :data:`MAX_JSON_DEPTH` levels;
    iterative, so deep input cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ImgapiError("InvalidContent", f"Invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
