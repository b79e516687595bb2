"""A gateway + catalog + blob stack whose blob service the byte-moving security tests configure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blob_service.api.server import create_server
from blob_service.handlers.operations import BlobService
from blob_service.settings import BlobSettings
from gateway.settings import GatewaySettings
from tests.components import free_port
from tests.gateway.conftest import _start_catalog, _start_gateway


@dataclass
class BytesStack:
    base_url: str
    blob: BlobService
    blob_port: int
    gateway: GatewaySettings


@contextmanager
def bytes_stack(tmp: Path, blob: dict[str, Any], **gateway: Any) -> Iterator[BytesStack]:
    stops: list[Callable[[], None]] = []
    try:
        catalog_target, _catalog, stop_catalog = _start_catalog(tmp, "dc", [], None, "")
        stops.append(stop_catalog)
        settings = BlobSettings(**{"bind": "127.0.0.1:0", "data_dir": tmp / "blobs", "fsync": False, **blob})
        server, port, _health, service = create_server(settings)
        server.start()
        stops.append(service.stop)

        def stop_blob() -> None:
            server.stop(0).wait()

        stops.append(stop_blob)
        gw = GatewaySettings(
            host="127.0.0.1",
            port=free_port(),
            catalog_target=catalog_target,
            blob_target=f"127.0.0.1:{port}",
            host_name="imgapi0",
            **gateway,
        )
        stops.append(_start_gateway(gw))
        yield BytesStack(f"http://127.0.0.1:{gw.port}", service, port, gw)
    finally:
        for stop in reversed(stops):
            stop()
