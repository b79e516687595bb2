"""Issue 16 class 13: lone surrogate escapes (``"a\\ud800"``) through HTTP, pinned to the byte.

They are valid JSON and validate like any other value (the reference's answers), and texts echoing
one carry U+FFFD. Storing one is refused with 400 ``InvalidContent``: the database and the services'
protobuf strings carry UTF-8 only, so the record could not be answered (docs/compatibility.md).
"""

from __future__ import annotations

import httpx

from tests.gateway.compat_catalog_support import assert_answer, invalid
from tests.gateway.helpers import LUKE

BASE = b'"version":"1","type":"zone-dataset","os":"smartos"'


def _post(dc: httpx.Client, body: bytes) -> httpx.Response:
    return dc.post(f"/images?account={LUKE}", content=body, headers={"Content-Type": "application/json"})


def test_invalid_values_holding_a_lone_surrogate_validate_normally(dc: httpx.Client) -> None:
    r = _post(dc, b'{"name":"a\\ud800",' + BASE + b"}")
    name_chars = (
        'image name has invalid characters (only alpha-numeric characters and " ", ".", "-", "_" and "/" '
        "are allowed)"
    )
    assert_answer(r, 422, invalid([{"field": "name", "code": "Invalid", "message": name_chars}]))
    r = _post(dc, b'{"name":"a",' + BASE + b',"acl":["\\ud800"]}')
    message = 'invalid image "acl" (item 0 is not a UUID): \ufffd'
    assert_answer(r, 422, invalid([{"field": "acl", "code": "Invalid", "message": message}]))
    r = _post(dc, b'{"name":"a",' + BASE + b',"x\\udc00":1}')
    assert_answer(
        r,
        422,
        {
            "code": "InvalidParameter",
            "message": 'invalid extra parameters: "x\ufffd"',
            "errors": [{"field": "x\ufffd", "code": "Invalid"}],
        },
    )


def test_a_valid_record_holding_one_is_not_stored(dc: httpx.Client) -> None:
    name = b"surrogate-desc"
    r = _post(dc, b'{"name":"' + name + b'",' + BASE + b',"description":"d\\ud800"}')
    assert_answer(
        r, 400, {"code": "InvalidContent", "message": "Invalid JSON: a string holds a lone UTF-16 surrogate"}
    )
    assert dc.get("/images", params={"name": name.decode(), "state": "all"}).json() == []
