"""Running the gateway under uvicorn (production server: uvloop + httptools, HTTP/1.1 keep-alive)."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings


def uvicorn_config(settings: GatewaySettings, **overrides: object) -> uvicorn.Config:
    """uvicorn settings for the gateway: the app sets Date/Server itself (IMGAPI's values)."""
    kwargs: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "server_header": False,
        "date_header": False,
        "access_log": False,
        "lifespan": "on",
        "timeout_keep_alive": 75,
        "log_level": "warning",
    }
    kwargs.update(overrides)
    return uvicorn.Config(create_app(settings), **kwargs)  # type: ignore[arg-type]


def main() -> None:
    settings = GatewaySettings()
    uvicorn.Server(uvicorn_config(settings)).run()


if __name__ == "__main__":
    main()
