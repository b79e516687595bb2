"""``python -m catalog_service [serve|migrate]``: run the catalog gRPC server, or migrate the database."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from catalog_service.adapters.db.engine import make_engine, migrate
from catalog_service.api.server import serve_process
from catalog_service.settings import CatalogSettings
from imgapi_common.observability import announce, configure_logging, refuse
from imgapi_common.workers import run_workers


def main(argv: list[str]) -> int:
    try:
        settings = CatalogSettings()
    except ValidationError as e:
        refuse("catalog", f"invalid configuration (IMGAPI_CATALOG_*):\n{e}")
        return 2
    configure_logging("catalog", settings.log_level)
    command = argv[0] if argv else "serve"
    if command == "migrate":
        migrate(make_engine(settings.effective_database_url()))
        announce("catalog database migrated to head")
        return 0
    if command != "serve":
        print("usage: python -m catalog_service [serve|migrate]", file=sys.stderr)
        return 2
    if settings.processes > 1:
        # Migrate once, then let every worker start on a current schema.
        if settings.auto_migrate:
            migrate(make_engine(settings.effective_database_url()))
        announce(f"catalog: {settings.processes} worker processes on {settings.bind}")
        return run_workers(settings.processes, serve_process, settings)
    return serve_process(0, settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
