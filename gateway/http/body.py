"""Reading a JSON request body within a byte limit, and parsing it as IMGAPI does (a body that is
not JSON is treated as absent).

The limit holds before and while reading: a ``Content-Length`` above it is refused before a byte of
the body is read, and a body without one (chunked) is cut as soon as it passes the limit, so a
request never costs more memory than the limit. A refused body leaves unread bytes on the
connection: the response closes it (:data:`CLOSE_SCOPE_KEY`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from imgapi_common.errors import ImgapiError

#: Set in the ASGI scope when the response must close the connection (body left unread).
CLOSE_SCOPE_KEY = "imgapi.close"


def too_large(limit: int) -> ImgapiError:
    return ImgapiError("InvalidContent", f"request body too large (the limit is {limit} bytes)")


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or 400 ``InvalidContent`` once it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        request.scope[CLOSE_SCOPE_KEY] = True
        raise too_large(limit)
    pieces: list[bytes] = []  # no over-allocation: what is held never exceeds the limit
    size = 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            pieces.clear()
            request.scope[CLOSE_SCOPE_KEY] = True
            raise too_large(limit)
        pieces.append(piece)
    return b"".join(pieces)


@dataclass(frozen=True)
class JsonBody:
    """A JSON request body. ``present`` is False for an empty or non-JSON body."""

    present: bool
    text: str = ""
    value: Any = None


ABSENT_BODY = JsonBody(False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Unexpected token {name[0]} in JSON")


def parse_json_body(body: bytes, headers: Mapping[str, str]) -> JsonBody:
    """Content-MD5 check (400 BadDigest) and JSON parsing (400 InvalidContent, also for a document
    nested too deeply to parse)."""
    if not body:
        return ABSENT_BODY
    given_md5 = headers.get("content-md5")
    if given_md5 is not None:
        computed = base64.b64encode(hashlib.md5(body).digest()).decode("ascii")
        if given_md5 != computed:
            raise ImgapiError("BadDigest", f"Content-MD5 '{given_md5}' didn't match '{computed}'")
    ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        return ABSENT_BODY
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ImgapiError("InvalidContent", "Invalid JSON: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
        raise ImgapiError("InvalidContent", f"Invalid JSON: {msg}") from None
    return JsonBody(True, text, value)
