"""``python -m blob_service``: serve until SIGTERM/SIGINT, then drain gracefully."""

from __future__ import annotations

import logging

from blob_service.server import create_server
from blob_service.settings import load_settings
from imgapi_common.grpc_server import run_until_signal


def main() -> None:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server, port, health, service = create_server(settings)
    logging.getLogger("blob_service").info(
        "blob service (%s backend) listening on port %d", settings.backend, port
    )
    run_until_signal(server, health, settings.grace_seconds, on_stop=service.stop)


if __name__ == "__main__":
    main()
