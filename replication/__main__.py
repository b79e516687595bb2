"""``python -m replication``: the replication job runner with its gRPC status API.

Configuration: ``IMGAPI_REPLICATION_*`` (replication/settings.py). Every job persisted as running
is resumed at start-up, from its cursor and with its partially copied files.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from imgapi_common.grpc_server import run_until_signal
from imgapi_common.memory import tune_malloc
from imgapi_common.observability import announce, configure_logging, refuse, start_metrics_server
from replication.settings import ReplicationSettings


def main(argv: list[str]) -> int:
    try:
        settings = ReplicationSettings()
    except ValidationError as e:
        refuse("replication", f"invalid configuration (IMGAPI_REPLICATION_*):\n{e}")
        return 2
    if argv and argv[0] != "serve":
        print("usage: python -m replication [serve]", file=sys.stderr)
        return 2
    configure_logging("replication", settings.log_level)
    tune_malloc()
    from replication.api.server import create_server

    server, port, health, manager, imports, docker = create_server(settings)
    host = settings.bind.rsplit(":", 1)[0]
    metrics = start_metrics_server(settings.metrics_port, host)
    manager.start_all()
    docker.resume_unfinished()
    if settings.port_file is not None:
        tmp = settings.port_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(settings.port_file)
    announce(f"replication listening on {host}:{port}")
    if metrics:
        announce(f"replication metrics on http://{host}:{metrics}/metrics")

    def stop() -> None:
        docker.stop()
        imports.close()
        manager.stop_all()
        manager.store.close()

    run_until_signal(server, health, 5.0, on_stop=stop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
