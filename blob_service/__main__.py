"""``python -m blob_service``: serve until SIGTERM/SIGINT, then drain gracefully."""

from __future__ import annotations

import logging

from blob_service.api.server import create_server
from blob_service.settings import load_settings
from imgapi_common.grpc_server import run_until_signal
from imgapi_common.memory import tune_malloc
from imgapi_common.observability import configure_logging, start_metrics_server


def main() -> None:
    settings = load_settings()
    configure_logging("blob", settings.log_level)
    tune_malloc()
    server, port, health, service = create_server(settings)
    host = settings.bind.rsplit(":", 1)[0]
    metrics = start_metrics_server(settings.metrics_port, host)
    logging.getLogger("blob_service").info(
        "blob service (%s backend) listening on port %d%s",
        settings.backend,
        port,
        f", metrics on port {metrics}" if metrics else "",
    )
    run_until_signal(server, health, settings.grace_seconds, on_stop=service.stop)


if __name__ == "__main__":
    main()
