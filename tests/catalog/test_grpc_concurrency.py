"""Two catalog replicas (two create_server instances) sharing ONE database, racing transitions:
never a double activation, never a lost update (optimistic concurrency on the revision)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from typing import Any

import pytest

from imgapi_common.errors import ImgapiError
from tests.catalog.conftest import SDC, V2, Catalog, caller, database, manifest, running_catalog
from tests.catalog.grpc_support import attach_file, changes, get, new_uuid, view_of

THREADS = 16


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def replicas(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Catalog, Catalog]]:
    with ExitStack() as stack:
        url = stack.enter_context(database(request.param, tmp_path_factory.mktemp("replicas")))
        a = stack.enter_context(running_catalog(url, request.param, mode="dc", admin_uuid=SDC))
        b = stack.enter_context(running_catalog(url, request.param, mode="dc", admin_uuid=SDC))
        yield a, b


def race(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Run every task at the same moment; returns each result or the ImgapiError it raised."""
    barrier = threading.Barrier(len(tasks))

    def run(task: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return task()
        except ImgapiError as e:
            return e

    with ThreadPoolExecutor(len(tasks)) as pool:
        return list(pool.map(run, tasks))


def test_replicas_share_data(replicas: tuple[Catalog, Catalog]) -> None:
    a, b = replicas
    img = a.create(manifest())
    assert view_of(get(b, img["uuid"])) == img


@pytest.mark.parametrize("round_", range(3))
def test_activate_race_exactly_one_wins(replicas: tuple[Catalog, Catalog], round_: int) -> None:
    a, b = replicas
    img = a.create(manifest())
    attach_file(b, img["uuid"])
    results = race(
        [
            partial(cat.call, "ActivateImage", caller=caller(), view=V2, uuid=img["uuid"])
            for cat in [a, b] * (THREADS // 2)
        ]
    )
    wins = [r for r in results if not isinstance(r, ImgapiError)]
    losses = [r for r in results if isinstance(r, ImgapiError)]
    assert len(wins) == 1, [getattr(r, "code", "ok") for r in results]
    assert {e.code for e in losses} == {"ImageAlreadyActivated"}
    final = get(a, img["uuid"]).image
    assert final.state == "active" and final.revision == 3  # create, file, activate
    activations = [c for c in changes(a) if c.image_uuid == img["uuid"] and c.kind == "activate"]
    assert len(activations) == 1
    assert json.loads(activations[0].image.view_json)["published_at"] == view_of(wins[0])["published_at"]


def test_update_different_fields_no_lost_update(replicas: tuple[Catalog, Catalog]) -> None:
    a, b = replicas
    img = a.create(manifest())
    bodies: list[dict[str, Any]] = [
        {"description": "d"},
        {"homepage": "https://h.example"},
        {"eula": "https://e.example"},
        {"name": "renamed"},
        {"version": "9.9.9"},
        {"os": "linux"},
        {"users": [{"name": "root"}]},
        {"requirements": {"min_ram": 512}},
        {"generate_passwords": True},
        {"inherited_directories": ["/opt"]},
        {"billing_tags": ["b"]},
        {"traits": {"t": True}},
        {"tags": {"k": "v"}},
        {"public": True},
        {"acl": [new_uuid()]},
        {"owner": new_uuid()},
    ]
    results = race(
        [
            partial(
                cat.call,
                "UpdateImage",
                caller=caller(),
                view=V2,
                uuid=img["uuid"],
                update_json=json.dumps(body),
            )
            for cat, body in zip([a, b] * 8, bodies, strict=True)
        ]
    )
    assert all(not isinstance(r, ImgapiError) for r in results), results
    final = view_of(get(b, img["uuid"]))
    for body in bodies:
        for k, v in body.items():
            assert final[k] == v, k
    assert get(a, img["uuid"]).image.revision == 1 + len(bodies)
    revisions = sorted(r.image.revision for r in results)
    assert revisions == list(range(2, 2 + len(bodies)))  # each write saw the previous one


def test_acl_adds_from_both_replicas(replicas: tuple[Catalog, Catalog]) -> None:
    a, b = replicas
    img = a.create(manifest())
    accounts = [new_uuid() for _ in range(THREADS * 2)]
    results = race(
        [
            partial(
                cat.call,
                "AddImageAcl",
                caller=caller(),
                view=V2,
                uuid=img["uuid"],
                acl_json=json.dumps([acct]),
            )
            for cat, acct in zip([a, b] * THREADS, accounts, strict=True)
        ]
    )
    assert [r.body() for r in results if isinstance(r, ImgapiError)] == []
    final = view_of(get(b, img["uuid"]))
    assert sorted(final["acl"]) == sorted(accounts) and len(final["acl"]) == len(accounts)
    # removes race too: remove half while adding new ones
    extra = [new_uuid() for _ in range(THREADS // 2)]
    ops: list[Callable[[], Any]] = []
    for i, acct in enumerate(accounts[: THREADS // 2]):
        cat = a if i % 2 else b
        ops.append(
            partial(
                cat.call, "RemoveImageAcl", caller=caller(), uuid=img["uuid"], acl_json=json.dumps([acct])
            )
        )
    for i, acct in enumerate(extra):
        cat = b if i % 2 else a
        ops.append(
            partial(cat.call, "AddImageAcl", caller=caller(), uuid=img["uuid"], acl_json=json.dumps([acct]))
        )
    assert all(not isinstance(r, ImgapiError) for r in race(ops))
    final = view_of(get(a, img["uuid"]))
    assert sorted(final["acl"]) == sorted(accounts[THREADS // 2 :] + extra)


def test_disable_enable_race_consistent(replicas: tuple[Catalog, Catalog]) -> None:
    a, b = replicas
    img = a.create(manifest())
    attach_file(a, img["uuid"])
    a.call("ActivateImage", caller=caller(), uuid=img["uuid"])
    start = get(a, img["uuid"]).image.revision
    ops: list[Callable[[], Any]] = []
    for i in range(THREADS):
        cat = a if i % 2 else b
        method = "DisableImage" if i % 3 else "EnableImage"
        ops.append(partial(cat.call, method, caller=caller(), view=V2, uuid=img["uuid"]))
    results = race(ops)
    assert all(not isinstance(r, ImgapiError) for r in results)
    final = get(b, img["uuid"]).image
    assert final.revision == start + THREADS  # every transition applied, none lost
    view = json.loads(final.view_json)
    assert view["state"] == ("disabled" if view["disabled"] else "active")
    # the final state is the one written by the last revision
    last = max(results, key=lambda r: r.image.revision)
    assert last.image.revision == final.revision and json.loads(last.image.view_json) == view
    feed = [c for c in changes(a) if c.image_uuid == img["uuid"]]
    assert [c.kind for c in feed][-THREADS:] == [
        "disable" if json.loads(c.image.view_json)["disabled"] else "enable" for c in feed[-THREADS:]
    ]
    assert json.loads(feed[-1].image.view_json)["state"] == view["state"]


def test_racing_creates_and_deletes(replicas: tuple[Catalog, Catalog]) -> None:
    a, b = replicas
    base = a.create(manifest())
    # deleting the origin races with creating dependents: either the delete wins (and the creates
    # then fail with OriginDoesNotExist) or it is refused; never a dependent of a deleted image
    ops: list[Callable[[], Any]] = [partial(cat.create, manifest(origin=base["uuid"])) for cat in [a, b] * 4]
    ops.append(lambda: b.call("DeleteImage", caller=caller(), uuid=base["uuid"]))
    results = race(ops)
    deleted = results[-1]
    children = [r for r in results[:-1] if isinstance(r, dict)]
    if isinstance(deleted, ImgapiError):
        assert deleted.code == "ImageHasDependentImages"
        assert children
    else:
        assert deleted.deleted
        for r in results[:-1]:
            if isinstance(r, ImgapiError):
                assert r.code == "OriginDoesNotExist"
        assert children == [], "an image was created with a deleted origin"
