"""Helpers of the catalog compatibility transcripts (issue 16): exact status and body bytes."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.gateway.helpers import LUKE


def body_bytes(obj: Any) -> bytes:
    """IMGAPI's response text for ``obj`` (2-space indentation, key order kept, UTF-8)."""
    return json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8")


def assert_answer(r: httpx.Response, status: int, obj: Any) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.content == body_bytes(obj), r.text


def invalid(fields: list[dict[str, Any]], prefix: str = "invalid image data: ") -> dict[str, Any]:
    """A ValidationFailed body with these ``errors`` (the message lists their fields)."""
    return {
        "code": "ValidationFailed",
        "message": prefix + ", ".join(e["field"] for e in fields),
        "errors": fields,
    }


def manifest(**extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": "compat", "version": "1.0.0", "type": "zone-dataset", "os": "smartos"}
    m.update(extra)
    return m


def create(c: httpx.Client, m: dict[str, Any], account: str = LUKE) -> httpx.Response:
    return c.post(f"/images?account={account}", json=m)


def created(c: httpx.Client, **extra: Any) -> dict[str, Any]:
    r = create(c, manifest(**extra))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out
