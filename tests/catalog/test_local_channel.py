"""The catalog through its in-process channel (catalog_service.api.local) answers exactly as
through its gRPC server: the same messages, the same error statuses, on SQLite and PostgreSQL, and
what one writes the other reads at once (they are one catalog)."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc import aio
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2

from catalog_service.api.local import local_channel
from imgapi_common.grpc_errors import from_rpc_error
from imgapi_common.local_channel import LocalChannel
from tests.catalog.conftest import V2, VADER, Catalog, caller, catalog_channels, manifest

catalog = catalog_channels


def _in_process(cat: Catalog, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``fn(stub)`` on a fresh event loop with a stub on the catalog's local channel."""

    async def run() -> Any:
        channel = local_channel(cat.service)
        try:
            return await fn(catalog_pb2_grpc.CatalogServiceStub(channel))
        finally:
            await channel.close()

    return asyncio.run(run())


def _create_request(m: dict[str, Any], channel: str = "") -> catalog_pb2.CreateImageRequest:
    return catalog_pb2.CreateImageRequest(
        caller=common_pb2.CallerContext(channel=channel),
        view=V2,
        manifest_json=json.dumps(m),
    )


def test_calls_run_on_the_loop_on_sqlite_and_on_threads_on_postgres(catalog: Catalog) -> None:
    channel: LocalChannel = local_channel(catalog.service)
    assert channel.on_caller_thread is (catalog.backend == "sqlite")
    asyncio.run(channel.close())


def test_reads_answer_the_same_bytes(catalog: Catalog) -> None:
    img = catalog.create(manifest(public=True))
    requests: list[tuple[str, Any]] = [
        ("GetImage", catalog_pb2.GetImageRequest(uuid=img["uuid"], caller=caller(VADER), view=V2)),
        ("ListImages", catalog_pb2.ListImagesRequest(caller=caller(VADER), view=V2, limit=5)),
        ("ListImages", catalog_pb2.ListImagesRequest(caller=caller(VADER), page_json_only=True)),
        ("ResolveChannel", catalog_pb2.ResolveChannelRequest(channel="staging")),
        ("ListChannels", catalog_pb2.ListChannelsRequest()),
        ("GetServerConfig", catalog_pb2.GetServerConfigRequest()),
    ]
    over_network = [getattr(catalog.stub, m)(r, timeout=30).SerializeToString() for m, r in requests]

    async def calls(stub: Any) -> list[bytes]:
        return [(await getattr(stub, m)(r, timeout=30)).SerializeToString() for m, r in requests]

    assert _in_process(catalog, calls) == over_network


def test_failures_carry_the_same_status(catalog: Catalog) -> None:
    """Not found, a manifest refused field by field, bad JSON, an unknown channel, a state that
    forbids the call: code, message, packed details and HTTP-status trailer all equal."""
    img = catalog.create(manifest(public=True))
    bad = manifest(public=True, name="x" * 600, os="beos", version="")
    requests: list[tuple[str, Any]] = [
        (
            "GetImage",
            catalog_pb2.GetImageRequest(uuid="d1f3e5a2-0c4b-4b7a-9c1e-7f00a1b2c3d4", caller=caller()),
        ),
        ("CreateImage", _create_request(bad)),
        ("CreateImage", catalog_pb2.CreateImageRequest(caller=caller(VADER), manifest_json="{nope")),
        ("ListImages", catalog_pb2.ListImagesRequest(caller=caller(channel="no-such-channel"))),
        ("ActivateImage", catalog_pb2.ImageActionRequest(uuid=img["uuid"], caller=caller(VADER))),
    ]

    def fails(call: Callable[[], Any]) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as ei:
            call()
        return ei.value

    over_network = [fails(functools.partial(getattr(catalog.stub, m), r, timeout=30)) for m, r in requests]

    async def calls(stub: Any) -> list[aio.AioRpcError]:
        out = []
        for m, r in requests:
            with pytest.raises(aio.AioRpcError) as ei:
                await getattr(stub, m)(r, timeout=30)
            out.append(ei.value)
        return out

    in_process = _in_process(catalog, calls)
    for a, b in zip(over_network, in_process, strict=True):
        assert (b.code(), b.details()) == (a.code(), a.details())  # type: ignore[attr-defined]
        assert list(b.trailing_metadata() or ()) == list(a.trailing_metadata() or ())  # type: ignore[attr-defined]
        ea, eb = from_rpc_error(a), from_rpc_error(b)
        assert (eb.code, eb.message, eb.errors) == (ea.code, ea.message, ea.errors)
    codes = [from_rpc_error(e).code for e in in_process]
    assert codes == [
        "ResourceNotFound",
        "ValidationFailed",
        "InvalidContent",
        "ValidationFailed",
        "NoActivationNoFile",
    ]


def test_what_one_door_writes_the_other_reads_at_once(catalog: Catalog) -> None:
    """A write through the local channel is read through the gRPC server, and the other way round,
    without waiting: a listing cached by one door follows the other's write."""
    m = manifest(public=True)
    listing = catalog_pb2.ListImagesRequest(
        caller=caller(authenticated=True),
        state=catalog_pb2.ListImagesRequest.STATE_ALL,
        page_json_only=True,
        limit=1000,
    )
    before = catalog.stub.ListImages(listing, timeout=30).page_json

    async def create(stub: Any) -> Any:
        return await stub.CreateImage(_create_request(m), timeout=30)

    made = _in_process(catalog, create)
    uuid = made.image.uuid
    got = catalog.stub.GetImage(catalog_pb2.GetImageRequest(uuid=uuid, caller=caller(VADER)), timeout=30)
    assert got.image.name == m["name"]
    after = catalog.stub.ListImages(listing, timeout=30).page_json
    assert uuid not in before and uuid in after

    catalog.stub.UpdateImage(
        catalog_pb2.UpdateImageRequest(
            uuid=uuid, caller=caller(VADER), update_json='{"description": "seen"}'
        ),
        timeout=30,
    )

    async def read(stub: Any) -> tuple[Any, str]:
        one = await stub.GetImage(
            catalog_pb2.GetImageRequest(uuid=uuid, caller=caller(VADER), view=V2), timeout=30
        )
        return one, (await stub.ListImages(listing, timeout=30)).page_json

    one, page = _in_process(catalog, read)
    assert json.loads(one.image.view_json)["description"] == "seen"
    assert '"description":"seen"' in page


def test_writes_through_both_doors_at_once(catalog: Catalog) -> None:
    """While a thread writes through the gRPC server, the event loop writes in-process (on SQLite
    on its own thread, waiting for the write lock whenever the other holds it): every write lands,
    none fails or hangs."""
    n = 40
    made: list[str] = []
    failures: list[BaseException] = []

    def over_network() -> None:
        try:
            for _ in range(n):
                made.append(
                    catalog.stub.CreateImage(_create_request(manifest(public=True)), timeout=30).image.uuid
                )
        except BaseException as e:  # reported below, in the test's thread
            failures.append(e)

    async def in_process(stub: Any) -> list[str]:
        return [
            (await stub.CreateImage(_create_request(manifest(public=True)), timeout=30)).image.uuid
            for _ in range(n)
        ]

    writer = threading.Thread(target=over_network)
    writer.start()
    local = _in_process(catalog, in_process)
    writer.join(120)
    assert not writer.is_alive() and not failures, failures
    for uuid in [*made, *local]:
        got = catalog.stub.GetImage(catalog_pb2.GetImageRequest(uuid=uuid, caller=caller()), timeout=30)
        assert got.image.uuid == uuid
    assert len(set(made) | set(local)) == 2 * n


def test_the_callers_thread_keeps_its_connections_between_calls(catalog: Catalog) -> None:
    """On SQLite the event loop's thread, which serves the in-process calls itself, keeps one
    connection for reads and one for writes between calls instead of a pool checkout per call;
    on PostgreSQL calls run on the channel's threads and give theirs back. Either way a read sees
    at once what the gRPC server's threads committed, and a write refused inside its transaction
    leaves nothing written and the next write working."""
    pool: Any = catalog.service.engine.pool  # a QueuePool (checkedout() is not on the base class)
    uuid = catalog.create(manifest(public=True))["uuid"]
    get = catalog_pb2.GetImageRequest(uuid=uuid, caller=caller(VADER), view=V2)

    def update(text: str) -> catalog_pb2.UpdateImageRequest:
        return catalog_pb2.UpdateImageRequest(
            uuid=uuid, caller=caller(VADER), view=V2, update_json=json.dumps({"description": text})
        )

    async def calls(stub: Any) -> tuple[list[int], list[str], grpc.StatusCode]:
        held: list[int] = []
        seen: list[str] = []
        for i in range(3):
            catalog.stub.UpdateImage(update(f"network {i}"), timeout=30)  # a gRPC server thread
            seen.append(json.loads((await stub.GetImage(get, timeout=30)).image.view_json)["description"])
            await stub.UpdateImage(update(f"local {i}"), timeout=30)
            held.append(pool.checkedout())
        try:
            await stub.ActivateImage(catalog_pb2.ImageActionRequest(uuid=uuid, caller=caller(VADER)))
        except aio.AioRpcError as e:  # no file yet: refused after the image was read for update
            refused = e.code()
        else:
            raise AssertionError("activating an image without a file was not refused")
        await stub.UpdateImage(update("after the refusal"), timeout=30)
        return held, seen, refused

    held, seen, refused = _in_process(catalog, calls)
    assert held == ([2, 2, 2] if catalog.backend == "sqlite" else [0, 0, 0])
    assert seen == ["network 0", "network 1", "network 2"]
    assert refused is not grpc.StatusCode.OK
    got = catalog.stub.GetImage(get, timeout=30)
    assert json.loads(got.image.view_json)["description"] == "after the refusal"
    assert got.image.state == "unactivated"
