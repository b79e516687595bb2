"""An imgapi stack for Docker import tests: catalog + blob (tests/replication/stacks.py), a
replication-service gRPC server hosting DockerImport (registries on loopback allow-listed), and a
gateway pointing at it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgapi.v1 import common_pb2, docker_pb2_grpc

from gateway.settings import GatewaySettings
from imgapi_common.grpc_server import build_server
from imgapi_common.ssrf import Allowlist
from replication.adapters.destination import Destination
from replication.api.docker_servicer import SERVICE_NAME, DockerImportServicer
from tests.components import Shape, free_port
from tests.gateway.conftest import _start_gateway
from tests.replication.stacks import DC, LOOPBACK, start_dc


@dataclass
class Stack:
    dc: DC
    url: str
    stop: Callable[[], None]


def start_stack(
    tmp: Path, name: str, *, shape: Shape | None = None, accept_oci: bool = False, **dc_options: Any
) -> Stack:
    dc = start_dc(tmp, name, shape=shape, **dc_options)

    def destination(caller: common_pb2.CallerContext) -> Destination:
        return Destination(dc.catalog_target, dc.blob_target, caller=caller)

    servicer = DockerImportServicer(destination, Allowlist.parse(list(LOOPBACK)), accept_oci=accept_oci)
    server, port, _h = build_server(
        [(docker_pb2_grpc.add_DockerImportServicer_to_server, servicer)], [SERVICE_NAME], "127.0.0.1:0"
    )
    server.start()
    gw_port = free_port()
    stop_gateway = _start_gateway(
        GatewaySettings(
            host="127.0.0.1",
            port=gw_port,
            catalog_target=dc.catalog_target,
            blob_target=dc.blob_target,
            replication_target=f"127.0.0.1:{port}",
            host_name=f"imgapi-{name}",
        )
    )

    def stop() -> None:
        stop_gateway()
        server.stop(0).wait()
        dc.stop()

    return Stack(dc, f"http://127.0.0.1:{gw_port}", stop)
