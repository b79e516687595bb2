"""Issue 10 item 3: a repeated or empty query parameter is never first-wins and never an operator call.

``DELETE /images/<B's>?account=&account=A`` deleted B's image (the empty first value made it an
operator call); ``?account=B&account=A`` read as B. Parameters now arrive as node's query-string
parser gives them: a repeated value is a list (its text joins with ``,``: not a UUID, 422), an
empty ``account=`` is a user request whose account owns nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.conftest import PUBLIC_CHANNELS, Stack, new_uuid, start_stack
from tests.gateway.helpers import LUKE, VADER, create, err


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("edge-query"), mode="dc")
    yield s
    s.stop()


@pytest.fixture()
def c(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client(**{"Accept-Version": "*"}) as client:
        yield client


def exists(c: httpx.Client, uuid: str) -> bool:
    return c.get(f"/images/{uuid}").status_code == 200


def test_empty_then_real_account_does_not_delete_anothers_image(c: httpx.Client) -> None:
    theirs = create(c, account=VADER)["uuid"]
    body = err(c.delete(f"/images/{theirs}?account=&account={LUKE}"), 422, "InvalidParameter", ["account"])
    assert body["message"] == f'invalid "account": not a UUID: ",{LUKE}"'
    assert exists(c, theirs)


def test_two_accounts_are_not_read_as_the_first(c: httpx.Client) -> None:
    mine = create(c, account=VADER)["uuid"]
    err(c.get(f"/images/{mine}?account={VADER}&account={LUKE}"), 422, "InvalidParameter", ["account"])
    err(c.delete(f"/images/{mine}?account={VADER}&account={LUKE}"), 422, "InvalidParameter", ["account"])
    assert exists(c, mine)


@pytest.mark.parametrize("query", ["account=", "account", "account=&account=", "account[]="])
def test_empty_account_is_never_an_operator(c: httpx.Client, query: str) -> None:
    theirs = create(c, account=VADER)["uuid"]  # unactivated, private: visible to its owner only
    r = c.delete(f"/images/{theirs}?{query}")
    assert r.status_code in (404, 422), r.text
    r = c.post(f"/images/{theirs}?action=update&{query}", json={"description": "mine now"})
    assert r.status_code in (404, 422), r.text
    r = c.post(f"/images/{new_uuid()}?action=import&{query}", json={"name": "x"})
    assert r.status_code in (403, 422), r.text
    assert exists(c, theirs)
    assert "description" not in c.get(f"/images/{theirs}").json()


def test_empty_account_update_of_a_public_image_is_not_an_operator_update(c: httpx.Client) -> None:
    img = create(c, account=VADER, public=True)["uuid"]
    r = c.post(f"/images/{img}?action=update&account=", json={"billing_tags": ["x"]})
    err(r, 404, "ResourceNotFound")  # unactivated: invisible to anyone but its owner
    assert "billing_tags" not in c.get(f"/images/{img}").json()


def test_empty_account_lists_only_what_anyone_may_see(c: httpx.Client) -> None:
    private = create(c, account=VADER)["uuid"]
    assert private in {i["uuid"] for i in c.get("/images?state=all").json()}
    assert private not in {i["uuid"] for i in c.get("/images?state=all&account=").json()}


def test_repeated_action_is_not_first_wins(c: httpx.Client) -> None:
    img = create(c, account=VADER)["uuid"]
    body = err(
        c.post(f"/images/{img}?action=disable&action=enable", json={}), 422, "InvalidParameter", ["action"]
    )
    assert body["message"] == '"disable,enable" is not a valid action'
    assert c.get(f"/images/{img}").json()["disabled"] is False


def test_repeated_boolean_is_not_first_wins(c: httpx.Client) -> None:
    img = create(c, account=VADER)["uuid"]
    body = err(
        c.delete(f"/images/{img}?force_all_channels=true&force_all_channels=true"), 422, "InvalidParameter"
    )
    assert body["message"] == 'invalid value for "force_all_channels" param: "true,true" is not a boolean'
    assert exists(c, img)


def test_repeated_channel_is_one_unknown_channel(tmp_path_factory: pytest.TempPathFactory) -> None:
    s = start_stack(
        tmp_path_factory.mktemp("edge-query-ch"), mode="public", channels=PUBLIC_CHANNELS, admin_uuid=None
    )
    try:
        with s.client() as c:
            body = err(c.get("/images?channel=dev&channel=staging"), 422, "ValidationFailed", ["channel"])
            assert body["message"] == "unknown channel: dev,staging"
    finally:
        s.stop()


def test_empty_account_cannot_delete_a_visible_public_image(c: httpx.Client) -> None:
    theirs = create(c, account=VADER, public=True)["uuid"]
    assert c.put(f"/images/{theirs}/file?compression=none", content=b"bytes").status_code == 200
    assert c.post(f"/images/{theirs}?action=activate", json={}).status_code == 200
    assert c.get(f"/images/{theirs}?account=").status_code == 200  # anyone may see it
    body = err(c.delete(f"/images/{theirs}?account="), 422, "NotImageOwner")
    assert body["message"] == f"account  is not the owner of image {theirs}"
    err(c.post(f"/images/{theirs}?action=disable&account=", json={}), 422, "NotImageOwner")
    assert exists(c, theirs) and c.get(f"/images/{theirs}").json()["disabled"] is False
