"""Building and running a gRPC server the same way for every service.

``build_server`` returns ``(server, port)`` (bind port 0 in tests), with the standard health service
and server reflection, every call but health checks authenticated by the internal token
(imgapi_common.internal_auth) and every failure answered by one error interceptor
(imgapi_common.grpc_errors); ``run_until_signal`` starts it and stops it gracefully on SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import SecretStr

from imgapi_common.grpc_errors import ErrorInterceptor, StatusOf, imgapi_status
from imgapi_common.internal_auth import InternalAuthInterceptor, check_bind

log = logging.getLogger(__name__)

#: 1 MiB messages move bytes efficiently; allow some headroom for framing.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

Registrar = Callable[[Any, grpc.Server], None]


def build_server(
    registrations: Sequence[tuple[Registrar, Any]],
    service_names: Sequence[str],
    bind: str,
    max_workers: int = 32,
    interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
    reuse_port: bool = False,
    internal_token: SecretStr | str = "",
    max_send_message_bytes: int = MAX_MESSAGE_BYTES,
    max_receive_message_bytes: int = MAX_MESSAGE_BYTES,
    status_of: StatusOf | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Create a server with the given servicers, health checking and reflection, bound to ``bind``.

    Every call but a health check must carry ``internal_token`` (when one is given; without one
    the server may only listen on loopback). Returns the (not yet started) server, the bound port,
    and the health servicer (set NOT_SERVING on shutdown so load balancers drain the instance first).
    ``max_send_message_bytes`` raises the answer size limit of a service whose answers are bounded
    larger (the catalog's ListImages, imgapi_common.limits); ``max_receive_message_bytes`` the
    request size limit. Whatever a servicer method raises becomes the call's status through one
    :class:`~imgapi_common.grpc_errors.ErrorInterceptor`: ``status_of`` says how (default: IMGAPI
    errors as they are, anything else an InternalError).
    """
    token = internal_token if isinstance(internal_token, SecretStr) else SecretStr(internal_token)
    try:
        check_bind(bind, token, "bind")
    except ValueError as e:
        raise RuntimeError(str(e)) from None
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        # SO_REUSEPORT lets several worker processes share one port (see imgapi_common.workers);
        # off otherwise so that a second server on a taken port fails instead of sharing it.
        options=[
            ("grpc.max_receive_message_length", max_receive_message_bytes),
            ("grpc.max_send_message_length", max_send_message_bytes),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
        # Authentication first: the interceptors after it (observability caches its wrapped
        # handler per method) only ever see authenticated calls.
        interceptors=[InternalAuthInterceptor(token), *service_interceptors(interceptors, status_of)],
    )
    for register, servicer in registrations:
        register(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in (*service_names, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(bind)
    if port == 0:
        raise RuntimeError(f"cannot bind gRPC server to {bind}")
    return server, port, health_servicer


def service_interceptors(
    interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (), status_of: StatusOf | None = None
) -> list[grpc.ServerInterceptor[Any, Any]]:
    """A service's own interceptors followed by the one error interceptor (last, so the others see
    the status it gives a failed call): what its gRPC server and its in-process channel
    (imgapi_common.local_channel) both run."""
    return [*interceptors, ErrorInterceptor(status_of or imgapi_status())]


def run_until_signal(
    server: grpc.Server,
    health_servicer: health.HealthServicer,
    grace_seconds: float,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Start ``server`` and block until SIGTERM/SIGINT, then drain and stop gracefully."""
    stop = threading.Event()

    def _handle(signum: int, _frame: Any) -> None:
        log.info("signal %s received, shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    server.start()
    stop.wait()
    health_servicer.enter_graceful_shutdown()
    server.stop(grace_seconds).wait()
    if on_stop is not None:
        on_stop()
