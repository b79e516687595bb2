"""The Image model: the rules about one image record, without a database."""

from __future__ import annotations

from typing import Any

import pytest

from catalog_service.domain.image import (
    Image,
    check_account,
    walk_origins,
)
from imgapi_common.acl_channel_rules import check_uuid_list
from imgapi_common.errors import ImgapiError
from imgapi_common.manifest_fields import MAX_ORIGIN_CHAIN

OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
OTHER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
UUID = "5ce1b1a0-4d7a-4d3e-9c5f-3b2a1f0e9d8c"


def record(**fields: Any) -> dict[str, Any]:
    return {"uuid": UUID, "owner": OWNER, "state": "unactivated", **fields}


FILE = {"sha1": "a" * 40, "size": 1, "compression": "none", "contentMD5": "x", "blob_id": "b1"}


@pytest.mark.parametrize(
    ("fields", "visible"),
    [
        ({}, False),
        ({"activated": True}, False),
        ({"activated": True, "public": True}, True),
        ({"activated": "true", "public": "true"}, True),
        ({"activated": False, "public": True}, False),
        ({"activated": True, "acl": [OTHER]}, True),
        ({"activated": True, "acl": OTHER}, True),
        ({"activated": False, "acl": [OTHER]}, False),
        ({"activated": True, "acl": {OTHER: 1}}, False),
    ],
)
def test_visibility_to_another_account(fields: dict[str, Any], visible: bool) -> None:
    assert Image(record(**fields)).visible_to(OTHER) is visible
    assert Image(record(**fields)).visible_to(OWNER) is True


def test_owner_check_names_the_account_and_image() -> None:
    img = Image(record())
    img.check_owner(OWNER, OWNER)
    img.check_owner(None, "")  # an operator may change any image
    with pytest.raises(ImgapiError) as e:
        img.check_owner(OTHER, OTHER)
    assert e.value.code == "NotImageOwner"
    assert e.value.message == f"account {OTHER} is not the owner of image {UUID}"


def test_activation_needs_a_file_and_happens_once() -> None:
    img = Image(record(expires_at="2030-01-01T00:00:00Z"))
    with pytest.raises(ImgapiError) as e:
        img.activate("2026-01-01T00:00:00.000Z")
    assert e.value.code == "NoActivationNoFile"
    img.attach_file(FILE, now="2026-01-01T00:00:00.000Z", default_stor="local")
    img.activate("2026-01-02T00:00:00.000Z")
    assert img.record["state"] == "active"
    assert img.record["published_at"] == "2026-01-02T00:00:00.000Z"
    assert "expires_at" not in img.record
    with pytest.raises(ImgapiError) as e:
        img.activate("2026-01-03T00:00:00.000Z")
    assert e.value.code == "ImageAlreadyActivated"
    with pytest.raises(ImgapiError) as e:
        img.detach_file()
    assert e.value.code == "ImageFilesImmutable"
    img.set_disabled(True)
    assert img.record["state"] == "disabled"


def test_acl_changes_keep_order_and_drop_duplicates() -> None:
    img = Image(record(acl=OWNER))
    img.add_to_acl([OTHER, OWNER, OTHER])
    assert img.record["acl"] == [OWNER, OTHER]
    img.remove_from_acl([OWNER])
    assert img.record["acl"] == [OTHER]


def test_uuid_checks() -> None:
    assert check_account(OWNER) == OWNER
    with pytest.raises(ImgapiError) as e:
        check_account("")
    assert e.value.code == "InvalidParameter"
    with pytest.raises(ImgapiError) as e:
        check_uuid_list("acl", [OWNER, "nope"])
    assert "item 1 is not a UUID" in e.value.message
    with pytest.raises(ImgapiError):
        check_uuid_list("acl", None)


def chain_store(n: int) -> dict[str, dict[str, Any]]:
    """n images, each the origin of the next: u0 <- u1 <- ... <- u(n-1)."""
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(n)]
    return {u: {"uuid": u, **({"origin": ids[i - 1]} if i else {})} for i, u in enumerate(ids)}


def test_origin_walk_stops_where_told_and_at_the_root() -> None:
    store = chain_store(5)
    last = list(store)[-1]
    chain, stopped = walk_origins(store[last]["origin"], store.get)
    assert [r["uuid"] for r in chain] == list(store)[-2::-1] and stopped is None
    chain, stopped = walk_origins(store[last]["origin"], store.get, stop=lambda u, _r: u == list(store)[1])
    assert [r["uuid"] for r in chain] == list(store)[-2:1:-1] and stopped == list(store)[1]


def test_origin_walk_is_bounded_and_reports_missing_origins() -> None:
    store = chain_store(MAX_ORIGIN_CHAIN - 1)
    chain, _ = walk_origins(list(store)[-1], store.get)
    assert len(chain) == MAX_ORIGIN_CHAIN - 1
    store = chain_store(MAX_ORIGIN_CHAIN)
    with pytest.raises(ImgapiError) as e:
        walk_origins(list(store)[-1], store.get)
    assert e.value.code == "InternalError"
    with pytest.raises(ImgapiError) as e:
        walk_origins(OTHER, chain_store(0).get)
    assert e.value.code == "ResourceNotFound"


def test_an_origin_of_others_is_not_deletable() -> None:
    img = Image(record())
    img.check_deletable([])
    with pytest.raises(ImgapiError) as e:
        img.check_deletable([OTHER])
    assert e.value.code == "ImageHasDependentImages"
    assert e.value.message == f'image "{UUID}" has 1 dependent incremental image(s): {OTHER}'
    with pytest.raises(ImgapiError) as e:
        img.check_deletable([str(i) for i in range(12)])
    assert e.value.message.endswith("has 12 dependent incremental image(s): 0, 1, 2, 3, 4, and 7 more...")
