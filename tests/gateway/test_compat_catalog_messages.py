"""Issue 16 classes 9 and 10: the reference's validation texts, through HTTP, pinned to the byte.

The texts are the reference validator's wording (values printed as JavaScript prints them: ``%s``
is ``String(v)``, ``%j`` is ``JSON.stringify(v)``), written from the issue and IMGAPI's documented
rules since the reference is not at hand.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.gateway.compat_catalog_support import assert_answer, create, created, invalid, manifest
from tests.gateway.helpers import LUKE

ZVOL = {"type": "zvol", "nic_driver": "virtio", "disk_driver": "virtio", "cpu_type": "host", "image_size": 10}


def _err(field: str, message: str | None = None, code: str = "Invalid") -> dict[str, Any]:
    e: dict[str, Any] = {"field": field, "code": code}
    if message is not None:
        e["message"] = message
    return e


CREATE_CASES: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
    ({"v": -1}, [_err("v", '"v" must be a positive integer')]),
    ({"homepage": "ftp://x"}, [_err("homepage", "invalid image homepage URL protocol")]),
    ({"eula": "ftp://x"}, [_err("eula", "invalid image EULA URL protocol")]),
    (
        {"homepage": "https://" + "h" * 1017},
        [_err("homepage", "image homepage URL is too long (max 1024 characters)")],
    ),
    ({"acl": "nope"}, [_err("acl", 'invalid image "acl" (item 0 is not a UUID): nope')]),
    ({"acl": {"a": 1}}, [_err("acl", 'invalid image "acl" (not an array): [object Object]')]),
    (
        {"users": [{"name": "a", "x": 1}, "b", {"name": "ok"}]},
        [
            _err("users", 'invalid image "users" entry: {"name":"a","x":1}'),
            _err("users", 'invalid image "users" entry: "b"'),
        ],
    ),
    ({"users": {"a": 1}}, [_err("users", 'invalid image "users" (not an array): {"a":1}')]),
    (
        {"traits": {"a": 1, "b": None, "c": "ok"}},
        [
            _err("traits", 'invalid image "traits" entry: (a, 1)'),
            _err("traits", 'invalid image "traits" entry: (b, null)'),
        ],
    ),
    ({"traits": "x"}, [_err("traits", 'invalid image "traits" (not an object): "x"')]),
    ({"tags": ["dev"]}, [_err("tags", 'invalid image "tags" (not an object): ["dev"]')]),
    ({"tags": None}, [_err("tags", 'invalid image "tags" (not an object): null')]),
    (
        {"tags": {"k": "x" * 102400}},
        [_err("tags", 'image "tags" string length is too long, max 102400 characters')],
    ),
    (
        {"billing_tags": [5, "ok", None]},
        [
            _err("billing_tags", 'invalid image "billing_tags" entry : 5'),
            _err("billing_tags", 'invalid image "billing_tags" entry : null'),
        ],
    ),
    ({"error": 5}, [_err("error", 'invalid image "error" (not an object): 5')]),
    ({"requirements": None}, [_err("requirements", 'invalid image "requirements" (not an object): null')]),
    (
        {
            "requirements": {
                "cpu": 1,
                "networks": [{"name": "a"}],
                "brand": 5,
                "ssh_key": "true",
                "min_ram": 2048,
                "max_ram": 1024,
                "min_platform": {"7.0": "bad"},
                "max_platform": [],
            }
        },
        [
            _err("requirements.networks", 'invalid image "requirements.networks" entry: {"name":"a"}'),
            _err("requirements.brand", 'invalid image "requirements.brand" (not a string): 5'),
            _err("requirements.ssh_key", 'invalid image "requirements.ssh_key" (not a boolean): "true"'),
            _err("requirements.max_ram", "min_ram must be <= max_ram, but:min_ram=2048, max_ram=1024"),
            _err(
                "requirements.min_platform",
                'invalid image "requirements.min_platform" entry: "7.0: bad" not a valid platform version',
            ),
            _err(
                "requirements.max_platform", 'invalid image "requirements.max_platform" (not an object): []'
            ),
            _err("cpu", 'unsupported requirement "cpu"'),
        ],
    ),
    (
        {"requirements": {"min_ram": 1.5, "networks": "x"}},
        [
            _err("requirements.networks", 'invalid image "requirements.networks" (not an array): "x"'),
            _err(
                "requirements.min_ram", 'invalid image "requirements.min_ram" (not a positive integer): 1.5'
            ),
        ],
    ),
    # type: the reference's enumeration order; a null printed as "null" (not None)
    (
        {"type": "vm"},
        [
            _err(
                "type",
                'invalid image type, "vm", must be one of: zone-dataset, lx-dataset, zvol, docker, other, lxd',
            )
        ],
    ),
    (
        {"type": None},
        [
            _err(
                "type",
                'invalid image type, "null", must be one of: zone-dataset, lx-dataset, zvol, docker, other, lxd',
            )
        ],
    ),
    (
        {**ZVOL, "nic_driver": None},
        [_err("nic_driver", 'invalid image nic_driver: "null" (must be a string)')],
    ),
    (
        {**ZVOL, "cpu_type": ["a", "b"]},
        [_err("cpu_type", 'invalid image cpu_type: "a,b" (must be a string)')],
    ),
    (
        {**ZVOL, "image_size": "big"},
        [_err("image_size", 'invalid image image_size: "NaN" (must be a positive integer)')],
    ),
]


@pytest.mark.parametrize(("extra", "errors"), CREATE_CASES, ids=[str(i) for i in range(len(CREATE_CASES))])
def test_create_messages(dc: httpx.Client, extra: dict[str, Any], errors: list[dict[str, Any]]) -> None:
    assert_answer(create(dc, manifest(**extra)), 422, invalid(errors))


def test_uuid_owner_origin_state_errors_have_no_message(dc: httpx.Client) -> None:
    # operator create (no account): a malformed owner is reported by validation, without text
    r = dc.post("/images", json=manifest(owner="not-a-uuid"))
    assert_answer(r, 422, invalid([_err("owner")]))
    img = created(dc)
    r = dc.post(f"/images/{img['uuid']}?action=update", json={"state": "bogus"})
    assert_answer(r, 422, invalid([_err("state")]))


def test_published_at_messages(dc: httpx.Client) -> None:
    u = "6c0e8b3c-6e4a-4b8e-8b53-6b2f5b1f7a01"
    m = {**manifest(v=2, uuid=u, owner=LUKE), "published_at": "2020"}
    r = dc.post(f"/images/{u}?action=import", json=m)
    assert_answer(
        r,
        422,
        invalid([_err("published_at", 'published_at date not in "YYYY-MM-DDTHH:MM:SS(.SSS)Z" format')]),
    )


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("nic_driver", 'invalid image nic_driver: "e1000" (cannot have a value when image type is zvol)'),
        # (sic: the reference's double space)
        ("disk_driver", 'invalid image disk_driver: "e1000" (cannot have a value  when image type is zvol)'),
        ("cpu_type", 'invalid image cpu_type: "e1000" (cannot have a value when image type is zvol)'),
        ("image_size", 'invalid image image_size: "e1000" (cannot have a value when image type is zvol)'),
    ],
)
def test_zvol_fields_on_other_images(dc: httpx.Client, field: str, text: str) -> None:
    img = created(dc)
    r = dc.post(f"/images/{img['uuid']}?action=update", json={field: "e1000"})
    assert_answer(r, 422, invalid([_err(field, text)]))


def test_import_uuid_mismatch_prints_null_and_undefined(dc: httpx.Client) -> None:
    u = "6c0e8b3c-6e4a-4b8e-8b53-6b2f5b1f7a02"
    for given, shown in ((None, "null"), ("absent", "undefined"), (["a", "b"], "a,b")):
        m = manifest(v=2)
        if given != "absent":
            m["uuid"] = given
        r = dc.post(f"/images/{u}?action=import", json=m)
        assert_answer(
            r,
            422,
            {
                "code": "InvalidParameter",
                "message": f'URL UUID, "{u}" and body UUID, "{shown}" do not match',
                "errors": [{"field": "uuid", "code": "Invalid"}],
            },
        )


def test_channel_add_prints_values_as_javascript(pub: httpx.Client) -> None:
    img = pub.post("/images", json=manifest(owner=LUKE, public=True)).json()
    for body, shown in (({"channel": ["dev"]}, "dev"), ({"channel": None}, "null"), ({}, "undefined")):
        r = pub.post(f"/images/{img['uuid']}?action=channel-add", json=body)
        assert_answer(
            r,
            422,
            {
                "code": "ValidationFailed",
                "message": f"unknown channel: {shown}",
                "errors": [{"field": "channel", "code": "Invalid"}],
            },
        )


def test_storage_message_lists_the_storages(dc: httpx.Client) -> None:
    img = created(dc)
    r = dc.put(f"/images/{img['uuid']}/file?compression=none&storage=bogus", content=b"x")
    assert_answer(
        r,
        422,
        {
            "code": "InvalidParameter",
            "message": 'invalid storage "bogus" (must be one of local, manta)',
            "errors": [{"field": "storage", "code": "Invalid"}],
        },
    )


def test_acl_item_printed_as_javascript(dc: httpx.Client) -> None:
    img = created(dc)
    r = dc.post(f"/images/{img['uuid']}/acl?action=add", json=[None])
    assert_answer(
        r,
        422,
        {
            "code": "InvalidParameter",
            "message": 'invalid image "acl" (item 0 is not a UUID): null',
            "errors": [{"field": "acl", "code": "Invalid"}],
        },
    )


def test_origin_printed_as_javascript(dc: httpx.Client) -> None:
    r = create(dc, manifest(origin=["a", "b"]))
    assert_answer(r, 422, {"code": "OriginDoesNotExist", "message": 'origin image "a,b" does not exist'})


def test_dependent_images_listed_in_creation_order(dc: httpx.Client) -> None:
    origin = created(dc)
    u = origin["uuid"]
    assert dc.put(f"/images/{u}/file?compression=none", content=b"x").status_code == 200
    assert dc.post(f"/images/{u}?action=activate").status_code == 200
    # imported with descending uuids, so creation order is not uuid order
    tail = str(uuid.uuid4())[8:]
    deps = [f"{c * 8}{tail}" for c in "fc9a"]
    for d in deps:
        r = dc.post(f"/images/{d}?action=import", json=manifest(v=2, uuid=d, owner=LUKE, origin=u))
        assert r.status_code == 200, r.text
    r = dc.delete(f"/images/{u}")
    message = f'image "{u}" has 4 dependent incremental image(s): ' + ", ".join(deps)
    assert_answer(r, 422, {"code": "ImageHasDependentImages", "message": message})
