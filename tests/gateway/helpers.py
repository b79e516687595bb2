"""Small helpers shared by the gateway tests."""

from __future__ import annotations

from typing import Any

import httpx

LUKE = "91ba0e64-2547-11e2-a972-df579e5fddb3"
VADER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
EMPEROR = "a0b6b534-2547-11e2-b758-63a2afd747d1"
SDC = "ba28f844-8cb4-f141-882d-46d6251e6a9f"

BASE_181 = "c58161c0-2547-11e2-a75e-9fdca1940570"  # active, public, sdc
NODEJS = "da58c25a-2547-11e2-9b8d-136daa650e8a"  # disabled, public, sdc
BASE_200 = "e078a6aa-2547-11e2-8688-03ac37b2b4a0"  # unactivated, public, sdc, no file
FATHER = "7a1b1967-6ecf-1e4c-8f09-f49094cc36ad"  # active, private, vader, luke on ACL
DARK_SIDE = "9f819499-8298-9842-8cc5-1c2838196ab4"  # disabled, private, vader, luke on ACL
JOIN_US = "2d28c64f-fb16-2145-a0ca-f626aea35c77"  # unactivated, private, vader, emperor on ACL


def err(r: httpx.Response, status: int, code: str, fields: list[str] | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    if fields is not None:
        assert [e["field"] for e in body["errors"]] == fields, body
    return body


def manifest(**extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": "gw-test", "version": "1.0.0", "type": "zone-dataset", "os": "smartos"}
    m.update(extra)
    return m


def create(c: httpx.Client, account: str = LUKE, **extra: Any) -> dict[str, Any]:
    r = c.post(f"/images?account={account}", json=manifest(**extra))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
