"""The gateway's kept ListImages answers (gateway/adapters/list_answers.py): sent again only while
the catalog says its data is unchanged, never across callers or queries, and a write through the
gateway is listed by the very next request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.gateway.conftest import Stack, start_stack
from tests.gateway.helpers import VADER, create


def _answers(origin: str) -> float:
    return REGISTRY.get_sample_value("imgapi_gateway_list_answers_total", {"origin": origin}) or 0.0


class Counted:
    """How many ListImages answers were kept and rendered since it was made."""

    def __init__(self) -> None:
        self.start = (_answers("kept"), _answers("rendered"))

    def __call__(self) -> tuple[float, float]:
        return (_answers("kept") - self.start[0], _answers("rendered") - self.start[1])


def test_kept_answers_follow_every_write(dc: httpx.Client) -> None:
    uuid = create(dc, name="kept-answers", description="one")["uuid"]
    counted = Counted()
    first = dc.get("/images?name=kept-answers&state=all")
    again = dc.get("/images?name=kept-answers&state=all")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.json()[0]["description"] == "one"
    assert counted() == (1, 1)

    r = dc.post(f"/images/{uuid}", json={"description": "two"}, params={"action": "update"})
    assert r.status_code == 200, r.text
    after = dc.get("/images?name=kept-answers&state=all")
    assert after.json()[0]["description"] == "two"  # read-your-writes
    assert counted() == (1, 2)

    # Another caller, view or query is another answer (rendered, not the kept one).
    assert dc.get(f"/images?name=kept-answers&state=all&account={VADER}").json() == []
    assert dc.get("/images?name=kept-answers&state=all&owner=").json() == []
    assert dc.get("/images?name=kept-answers&state=all", headers={"Accept-Version": "~1"}).status_code == 200
    assert counted() == (1, 5)
    assert dc.get("/images?name=kept-answers&state=all").content == after.content
    assert counted() == (2, 5)


@pytest.fixture
def uncached(tmp_path: Path) -> Iterator[Stack]:
    stack = start_stack(tmp_path, mode="dc", list_cache_bytes=0)
    yield stack
    stack.stop()


def test_a_zero_budget_renders_every_answer(uncached: Stack) -> None:
    with uncached.client(**{"Accept-Version": "*"}) as c:
        create(c, name="uncached-answers")
        counted = Counted()
        assert c.get("/images?name=uncached-answers&state=all").content == (
            c.get("/images?name=uncached-answers&state=all").content
        )
        assert counted() == (0, 0)  # neither kept nor counted: the cache is off
