"""Spreading the gateway's catalog connections evenly over the catalog's worker processes.

The gateway sends each call over the next of its ``catalog_connections`` in turn, so every
connection carries the same share of the load. A catalog with several processes on one port
(SO_REUSEPORT) gets those connections from the kernel at random: with 4 connections and 2
processes, all 4 land on one process 1 time in 8 and 3 on one half the time, and the busier
process caps the throughput (GetImage measured 700-1,260 req/s unbalanced against ~1,700 balanced).

Each catalog process names itself in the initial metadata of GetServerConfig
(``imgapi-worker: <index>/<count>`` and ``imgapi-worker-id``). :func:`balance` asks every
connection who answers, and replaces connections of an over-full process with fresh ones (a new
connection is a new draw) until no process holds more than its share, within a bounded number of
attempts. A target behind a per-call balancer (Envoy, a service mesh) answers from different
processes on one connection: there is nothing to balance and the connections are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from dataclasses import dataclass

import grpc
from imgapi.v1 import catalog_pb2

from gateway.adapters.grpc_clients import Clients, new_catalog_channel
from imgapi_common.workers import WORKER_ID_KEY, WORKER_KEY

log = logging.getLogger(__name__)

#: Fresh connections tried per connection before giving up (each has a (n-1)/n chance to miss).
ATTEMPTS_PER_CONNECTION = 8


@dataclass(frozen=True)
class Worker:
    id: str
    count: int


async def probe(clients: Clients, index: int, timeout: float = 5.0) -> Worker | None:
    """Which catalog process answers on connection ``index`` (``None``: it does not say)."""
    call = clients.catalog_stubs[index].GetServerConfig(catalog_pb2.GetServerConfigRequest(), timeout=timeout)
    md = await call.initial_metadata()
    await call
    found = {k: v for k, v in (md or ()) if isinstance(v, str)}
    wid, spec = found.get(WORKER_ID_KEY), found.get(WORKER_KEY, "")
    try:
        count = int(spec.partition("/")[2])
    except ValueError:
        return None
    return Worker(wid, count) if wid and count > 0 else None


async def _replace(clients: Clients, index: int, target: str) -> None:
    old = clients.catalog_channels[index]
    channel, stub = new_catalog_channel(target, clients.token)
    clients.catalog_channels[index], clients.catalog_stubs[index] = channel, stub
    with contextlib.suppress(Exception):
        await old.close(grace=30)  # calls already under way finish


async def balance(clients: Clients, target: str) -> Counter[str] | None:
    """Even out the connections; returns connections per process, or ``None`` when there is
    nothing to balance (one connection, an old catalog, or a per-call balancer in front)."""
    n = len(clients.catalog_stubs)
    if n < 2:
        return None
    owners: list[Worker | None] = []
    for i in range(n):
        first, second = await probe(clients, i), await probe(clients, i)
        if first is None or first != second:
            return None
        owners.append(first)
    workers = max(w.count for w in owners if w is not None)
    share = math.ceil(n / workers)
    for _ in range(ATTEMPTS_PER_CONNECTION * n):
        load = Counter(w.id for w in owners if w is not None)
        if not load or max(load.values()) <= share:
            break
        busiest = load.most_common(1)[0][0]
        i = next(i for i, w in enumerate(owners) if w is not None and w.id == busiest)
        await _replace(clients, i, target)
        owners[i] = await probe(clients, i)
    else:
        log.warning("catalog connections still uneven after %d reconnects", ATTEMPTS_PER_CONNECTION * n)
    load = Counter(w.id for w in owners if w is not None)
    log.info("catalog connections per process: %s", dict(load))
    return load


async def keep_balanced(clients: Clients, target: str, every: float) -> None:
    """Re-balance every ``every`` seconds (a restarted catalog process reconnects at random)."""
    while True:
        await asyncio.sleep(every)
        try:
            await balance(clients, target)
        except grpc.RpcError:
            log.warning("catalog connection balancing failed; retrying in %.0f s", every)
        except Exception:
            log.exception("catalog connection balancing failed")
