"""Issue 16 class 11: JSON as JavaScript reads and prints it, through HTTP, pinned to the byte.

Numbers print as JavaScript prints them (``1e-7``), integers beyond 2**53 are the nearest double,
and integer-like object keys come first in ascending order, in bodies and in ``errors``.
"""

from __future__ import annotations

import httpx

from tests.gateway.helpers import LUKE


def _create(dc: httpx.Client, body: bytes) -> httpx.Response:
    return dc.post(f"/images?account={LUKE}", content=body, headers={"Content-Type": "application/json"})


def test_numbers_and_key_order_in_a_stored_body(dc: httpx.Client) -> None:
    body = (
        b'{"name":"js-json","version":"1.0.0","type":"zone-dataset","os":"smartos",'
        b'"tags":{"b":[1e-7,12345678901234567890,1.0,2e21,-0],"01":1,"1":2,"0":{"z":1,"10":0,"9":0}}}'
    )
    r = _create(dc, body)
    assert r.status_code == 200, r.text
    uuid = r.json()["uuid"]
    expected = (
        "{\n"
        '  "v": 2,\n'
        f'  "uuid": "{uuid}",\n'
        f'  "owner": "{LUKE}",\n'
        '  "name": "js-json",\n'
        '  "version": "1.0.0",\n'
        '  "state": "unactivated",\n'
        '  "disabled": false,\n'
        '  "public": false,\n'
        '  "type": "zone-dataset",\n'
        '  "os": "smartos",\n'
        '  "files": [],\n'
        '  "tags": {\n'
        '    "0": {\n'
        '      "9": 0,\n'
        '      "10": 0,\n'
        '      "z": 1\n'
        "    },\n"
        '    "1": 2,\n'
        '    "b": [\n'
        "      1e-7,\n"
        "      12345678901234567000,\n"
        "      1,\n"
        "      2e+21,\n"
        "      0\n"
        "    ],\n"
        '    "01": 1\n'
        "  }\n"
        "}"
    )
    assert r.text == expected
    got = dc.get(f"/images/{uuid}")
    assert (got.status_code, got.text) == (200, expected)
    assert got.headers["etag"] == r.headers["etag"]
    # the tag search strings use the same number texts
    found = dc.get("/images", params={"tag.1": "2", "state": "all", "account": LUKE})
    assert [i["uuid"] for i in found.json()] == [uuid]


def test_integer_like_keys_come_first_in_errors(dc: httpx.Client) -> None:
    body = b'{"name":"x","version":"1","type":"zone-dataset","os":"smartos","zz":1,"10":1,"2":1}'
    r = _create(dc, body)
    assert r.status_code == 422
    assert r.text == (
        "{\n"
        '  "code": "InvalidParameter",\n'
        '  "message": "invalid extra parameters: \\"2\\", \\"10\\", \\"zz\\"",\n'
        '  "errors": [\n'
        "    {\n"
        '      "field": "2",\n'
        '      "code": "Invalid"\n'
        "    },\n"
        "    {\n"
        '      "field": "10",\n'
        '      "code": "Invalid"\n'
        "    },\n"
        "    {\n"
        '      "field": "zz",\n'
        '      "code": "Invalid"\n'
        "    }\n"
        "  ]\n"
        "}"
    )
