"""``python -m catalog_service [serve|migrate]``: run the catalog gRPC server, or migrate the database."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from catalog_service.db.engine import make_engine, migrate
from catalog_service.settings import CatalogSettings
from imgapi_common.grpc_server import run_until_signal
from imgapi_common.observability import configure_logging, start_metrics_server


def main(argv: list[str]) -> int:
    try:
        settings = CatalogSettings()
    except ValidationError as e:
        print(f"catalog: invalid configuration (IMGAPI_CATALOG_*):\n{e}", file=sys.stderr)
        return 2
    configure_logging("catalog", settings.log_level)
    command = argv[0] if argv else "serve"
    if command == "migrate":
        migrate(make_engine(settings.effective_database_url()))
        print("catalog database migrated to head")
        return 0
    if command != "serve":
        print("usage: python -m catalog_service [serve|migrate]", file=sys.stderr)
        return 2
    from catalog_service.server import create_server

    server, port, health, service = create_server(settings)
    host = settings.bind.rsplit(":", 1)[0]
    metrics = start_metrics_server(settings.metrics_port, host)
    print(f"catalog listening on {host}:{port} (mode {settings.mode})", flush=True)
    if metrics:
        print(f"catalog metrics on http://{host}:{metrics}/metrics", flush=True)
    run_until_signal(server, health, settings.grace_seconds, on_stop=service.engine.dispose)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
