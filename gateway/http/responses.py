"""Response construction: IMGAPI's JSON formatting and the headers every response carries."""

from __future__ import annotations

import functools
import json
import re
import time
from email.utils import formatdate
from typing import Any

import orjson
from starlette.responses import Response

JSON_TYPE = "application/json"

#: What orjson would print differently from ``json``: integers beyond 64 bits (read as floats) and
#: floats in exponent notation (``1e-8`` against ``1e-08``). A match inside a string costs speed only.
#: A number token (it follows ``:``, ``[`` or ``,``; the texts are JSON objects or arrays) orjson would
#: print differently: exponent form or 19+ digits. Anchored at the token start: hex digits in UUIDs and SHA-1s (``...cc1e-4eaa...``)
#: matched the unanchored pattern and sent almost every large listing to the slow path (a 1000-image
#: page took ~25x longer).
_ORJSON_DIFFERS = re.compile(r"[:\[,]\s*-?[0-9](?:[0-9]{18}|[0-9]*(?:\.[0-9]+)?[eE])")


def dumps(obj: Any) -> bytes:
    """IMGAPI's pretty JSON: 2-space indentation, key order preserved, non-ASCII kept as UTF-8."""
    return json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status_code=status, headers=headers, media_type=JSON_TYPE)


#: The tokens of a compact JSON text: strings, punctuation, and scalars (numbers, literals).
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^{}\[\],:"\s]+')
_CLOSE = {"{": "}", "[": "]"}


def reindent(text: str) -> str:
    """A compact JSON text with 2-space indentation, every token kept as written: the catalog
    prints numbers as JavaScript does (``1e-7``, ``12345678901234567000``) and orders object keys
    as JavaScript does, which a parse and re-dump would change."""
    out: list[str] = []
    level = 0
    tokens = _JSON_TOKEN.findall(text)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _CLOSE:
            if i + 1 < len(tokens) and tokens[i + 1] == _CLOSE[tok]:
                out.append(tok + _CLOSE[tok])  # empty container
                i += 2
                continue
            level += 1
            out.append(tok + "\n" + "  " * level)
        elif tok in ("}", "]"):
            level -= 1
            out.append("\n" + "  " * level + tok)
        elif tok == ",":
            out.append(",\n" + "  " * level)
        elif tok == ":":
            out.append(": ")
        else:
            out.append(tok)
        i += 1
    return "".join(out)


def pretty(text: str) -> bytes:
    """JSON text from the catalog (an ``Image.view_json`` or a ListImages ``page_json``, compact) in
    IMGAPI's pretty format: what :func:`dumps` makes of the parsed value, produced by
    orjson (~8x faster, a visible share of a GetImage and most of a 1000-image ListImages).
    Texts with numbers orjson would print differently are re-indented as text instead.

    First the cheapest proof: when orjson writes the parsed text back byte for byte, every token
    is as given and its indented output is the answer (a 1000-image page: ~3.5 ms, where searching
    the text for such numbers took 5 ms alone)."""
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        if not _ORJSON_DIFFERS.search(text):
            raise
        return reindent(text).encode("utf-8")
    if orjson.dumps(values) == text.encode("utf-8") or not _ORJSON_DIFFERS.search(text):
        return orjson.dumps(values, option=orjson.OPT_INDENT_2)
    return reindent(text).encode("utf-8")


def json_text_response(view_json: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Re-render compact JSON text from the catalog (``Image.view_json``) with IMGAPI's indentation."""
    return Response(pretty(view_json), status_code=status, headers=headers, media_type=JSON_TYPE)


def image_response(view_json: str, etag: str | None) -> Response:
    """One image object with its unquoted ``Etag``."""
    return json_text_response(view_json, headers={"Etag": etag} if etag else None)


def images_response(page_json: str) -> Response:
    """A JSON array of image objects (the catalog's ``page_json``)."""
    return bytes_response(pretty(page_json))


def bytes_response(body: bytes) -> Response:
    """A JSON body rendered before (e.g. a kept ListImages answer)."""
    return Response(body, media_type=JSON_TYPE)


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    """204/202/304/301: no body (301 keeps ``Content-Length: 0``)."""
    if status in (204, 304):
        return Response(None, status_code=status, headers=headers)
    return Response(b"", status_code=status, headers=headers)


def http_date(ts: float | None = None) -> str:
    return formatdate(time.time() if ts is None else ts, usegmt=True)


@functools.lru_cache(maxsize=2)
def _date_header(second: int) -> bytes:
    """The ``Date`` value of one second (formatted once per second, not per response)."""
    return http_date(second).encode("latin-1")


def common_headers(
    *, request_id: str, server_name: str, host_name: str, started: float, close: bool = False
) -> list[tuple[bytes, bytes]]:
    """The headers on every response (``x-response-time`` in whole milliseconds).

    ``close``: the connection ends after this response (a request body was left unread)."""
    elapsed = int((time.monotonic() - started) * 1000)
    return [
        (b"date", _date_header(int(time.time()))),
        (b"server", server_name.encode("latin-1")),
        (b"x-request-id", request_id.encode("latin-1")),
        (b"x-response-time", str(elapsed).encode("latin-1")),
        (b"x-server-name", host_name.encode("latin-1")),
        (b"connection", b"close" if close else b"keep-alive"),
    ]
