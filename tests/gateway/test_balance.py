"""The gateway spreads its catalog connections evenly over the catalog's worker processes.

Against a real catalog running 2 worker processes on one SO_REUSEPORT port: the kernel hands
connections out at random, so without balancing 6 connections split 3:3 only 31% of the time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc
from pydantic import SecretStr

from gateway.adapters.balance import balance, probe
from gateway.adapters.grpc_clients import create_clients
from gateway.app import create_app
from gateway.settings import GatewaySettings
from imgapi_common import internal_auth
from imgapi_common.workers import WORKER_ID_KEY, WORKER_KEY
from tests.deploy.procs import TOKEN, grpc_serving, procs_group, spawn_catalog, wait_until


@pytest.fixture(scope="module")
def two_process_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("balance")
    with procs_group(tmp) as procs:
        proc, addr = spawn_catalog(
            procs,
            "catalog",
            processes="2",
            database_url=f"sqlite:///{tmp}/catalog.db",
            data_dir=str(tmp),
            mode="dc",
        )
        wait_until("catalog serving", lambda: grpc_serving(addr), [proc])
        wait_until("both catalog processes serving", lambda: len(_workers_seen(addr, 16)) == 2, [proc])
        yield addr


def _workers_seen(target: str, connections: int) -> set[str]:
    """Worker ids answering on ``connections`` fresh connections."""
    seen: set[str] = set()
    for _ in range(connections):
        with internal_auth.channel(target, TOKEN, [("grpc.use_local_subchannel_pool", 1)]) as ch:
            _, call = catalog_pb2_grpc.CatalogServiceStub(ch).GetServerConfig.with_call(
                catalog_pb2.GetServerConfigRequest(), timeout=5
            )
            seen |= {str(v) for k, v in call.initial_metadata() if k == WORKER_ID_KEY}
    return seen


def _settings(target: str, connections: int) -> GatewaySettings:
    return GatewaySettings(
        catalog_target=target, catalog_connections=connections, internal_token=SecretStr(TOKEN)
    )


async def _owners(clients: Any) -> Counter[str]:
    workers = [await probe(clients, i) for i in range(len(clients.catalog_stubs))]
    assert all(w is not None for w in workers)
    return Counter(w.id for w in workers if w is not None)


@pytest.mark.parametrize("attempt", range(3))
def test_connections_end_up_evenly_spread(two_process_catalog: str, attempt: int) -> None:
    async def run() -> tuple[Counter[str] | None, Counter[str]]:
        clients = create_clients(_settings(two_process_catalog, 6))
        try:
            result = await balance(clients, two_process_catalog)
            return result, await _owners(clients)  # asked again, independently
        finally:
            await clients.close()

    result, owners = asyncio.run(run())
    assert sorted(owners.values()) == [3, 3], owners
    assert result == owners


def test_a_single_process_catalog_is_left_alone(tmp_path: Path) -> None:
    with procs_group(tmp_path) as procs:
        proc, addr = spawn_catalog(
            procs, "catalog", database_url=f"sqlite:///{tmp_path}/c.db", data_dir=str(tmp_path), mode="dc"
        )
        wait_until("catalog serving", lambda: grpc_serving(addr), [proc])

        async def run() -> tuple[Counter[str] | None, list[aio.Channel]]:
            clients = create_clients(_settings(addr, 3))
            before = list(clients.catalog_channels)
            try:
                return await balance(clients, addr), [
                    c for c, b in zip(clients.catalog_channels, before, strict=True) if c is not b
                ]
            finally:
                await clients.close()

        result, replaced = asyncio.run(run())
    assert result is not None and list(result.values()) == [3]
    assert replaced == []


class _PerCallBalancer(catalog_pb2_grpc.CatalogServiceServicer):
    """Answers each call as a different process, like Envoy in front of several replicas."""

    def __init__(self) -> None:
        self._next = itertools.count()

    async def GetServerConfig(self, request: Any, context: Any) -> catalog_pb2.ServerConfig:  # type: ignore[override]
        n = next(self._next)
        await context.send_initial_metadata(((WORKER_KEY, f"{n % 2}/2"), (WORKER_ID_KEY, f"replica-{n % 2}")))
        return catalog_pb2.ServerConfig(mode="dc")


def test_a_per_call_balancer_in_front_is_left_alone() -> None:
    async def run() -> tuple[Counter[str] | None, int]:
        server = aio.server()
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(_PerCallBalancer(), server)  # type: ignore[abstract]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        target = f"127.0.0.1:{port}"
        clients = create_clients(_settings(target, 4))
        before = list(clients.catalog_channels)
        try:
            result = await balance(clients, target)
            same = sum(a is b for a, b in zip(clients.catalog_channels, before, strict=True))
            return result, same
        finally:
            await clients.close()
            await server.stop(None)

    result, unchanged = asyncio.run(run())
    assert result is None
    assert unchanged == 4


def test_gateway_balances_at_start_up(two_process_catalog: str) -> None:
    """Through the gateway's own start-up (its lifespan), not just the function."""
    app = create_app(
        GatewaySettings(
            catalog_target=two_process_catalog,
            blob_target="127.0.0.1:1",
            catalog_connections=4,
            internal_token=SecretStr(TOKEN),
        )
    )

    async def run() -> Counter[str]:
        async with app.router.lifespan_context(app):
            return await _owners(app.state.imgapi.clients)

    counts = asyncio.run(run())
    assert sorted(counts.values()) == [2, 2], counts


def test_probe_error_is_a_grpc_error() -> None:
    async def run() -> None:
        clients = create_clients(_settings("127.0.0.1:1", 1))
        try:
            await probe(clients, 0, timeout=0.5)
        finally:
            await clients.close()

    with pytest.raises(grpc.RpcError):
        asyncio.run(run())
