"""Running the gateway under uvicorn (production server: uvloop + httptools, HTTP/1.1 keep-alive)."""

from __future__ import annotations

import socket

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette

from gateway.adapters.grpc_clients import InProcess
from gateway.app import create_app
from gateway.http.protocol import EdgeLimits, edge_protocol
from gateway.settings import GatewaySettings
from imgapi_common.memory import tune_malloc
from imgapi_common.observability import announce, configure_logging, refuse, start_metrics_server


def uvicorn_config(
    settings: GatewaySettings, in_process: InProcess | None = None, **overrides: object
) -> uvicorn.Config:
    """uvicorn settings for the gateway: the app sets Date/Server itself (IMGAPI's values); each
    connection enforces the request head limits (gateway/http/protocol.py). ``in_process``: see
    :func:`gateway.app.create_app`."""
    kwargs: dict[str, object] = {
        "http": edge_protocol(EdgeLimits.from_settings(settings, socket.gethostname())),
        "host": settings.host,
        "port": settings.port,
        "server_header": False,
        "date_header": False,
        "access_log": False,
        "lifespan": "on",
        "timeout_keep_alive": 75,
        "log_level": "warning",
        "log_config": None,  # uvicorn's records go through configure_logging's one format
    }
    kwargs.update(overrides)
    return uvicorn.Config(create_app(settings, in_process), **kwargs)  # type: ignore[arg-type]


def app_from_environment() -> Starlette:
    """The app factory of worker processes (``processes > 1``): settings from the environment."""
    settings = GatewaySettings()
    _worker_setup(settings)
    return create_app(settings)


def _worker_setup(settings: GatewaySettings) -> None:
    configure_logging("gateway", settings.log_level)
    tune_malloc()
    # Each worker process takes the first free port of metrics_port .. metrics_port+processes-1.
    start_metrics_server(settings.metrics_port, settings.host, tries=settings.processes)


def main() -> None:
    try:
        settings = GatewaySettings()
    except ValidationError as e:
        refuse("gateway", f"invalid configuration (IMGAPI_GATEWAY_*):\n{e}")
        raise SystemExit(2) from e
    configure_logging("gateway", settings.log_level)
    announce(f"gateway listening on http://{settings.host}:{settings.port}")
    if settings.processes > 1:
        uvicorn.run(
            "gateway.server:app_from_environment",
            factory=True,
            workers=settings.processes,
            http="gateway.http.protocol:EnvironmentEdgeProtocol",
            host=settings.host,
            port=settings.port,
            server_header=False,
            date_header=False,
            access_log=False,
            lifespan="on",
            timeout_keep_alive=75,
            log_level="warning",
            log_config=None,
        )
        return
    _worker_setup(settings)
    uvicorn.Server(uvicorn_config(settings)).run()


if __name__ == "__main__":
    main()
