"""Observability shared by every service: JSON logs carrying the request id, Prometheus metrics.

* ``configure_logging(service)``: one format per process. Where nobody watches (stderr is not a
  terminal: files, journald, containers) every line is one JSON object (``ts``, ``level``,
  ``service``, ``logger``, ``msg``, ``request_id`` when inside a request, exception text); on a
  terminal the same records print as human lines. Third-party loggers (uvicorn's included) go
  through the same handler. ``announce(msg)`` prints a start-up line (where a service listens) on
  stdout in that same format.
* ``request_id``: a context variable set per request; the gateway takes it from ``x-request-id`` and
  sends it to the services as gRPC metadata ``x-request-id``; :class:`ObservabilityInterceptor`
  picks it up on the service side, so every log line of one request carries the same id.
* gRPC metrics (``imgapi_grpc_requests_total``, ``imgapi_grpc_request_seconds``) recorded by the
  interceptor; ``start_metrics_server(port)`` exposes ``/metrics`` (Prometheus text format) with
  only the process's own metrics (:data:`OWN_METRICS`: a gateway that imports replication code
  does not show replication or blob counters) plus the process/platform collectors.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric

from imgapi_common.log_lines import is_terminal, json_line, utc_ts
from imgapi_common.method_interceptor import MethodWrappingInterceptor, Wrappers

#: The id of the request being served in this context ("" outside requests).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

REQUEST_ID_METADATA = "x-request-id"

GRPC_REQUESTS = Counter("imgapi_grpc_requests_total", "gRPC requests handled", ["service", "method", "code"])
GRPC_LATENCY = Histogram(
    "imgapi_grpc_request_seconds",
    "gRPC request handling time (streams: until the handler returns)",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600),
)


#: Bytes moved by the blob service (direction: "in" = written by uploads, "out" = read).
BLOB_BYTES = Counter("imgapi_blob_bytes_total", "Bytes moved by the blob service", ["direction"])
#: Upload streams being written right now.
BLOB_UPLOADS_IN_FLIGHT = Gauge("imgapi_blob_uploads_in_flight", "WriteChunks streams in progress")


#: REST requests handled by the gateway, by route pattern (not raw path: bounded cardinality).
HTTP_REQUESTS = Counter("imgapi_http_requests_total", "HTTP requests handled", ["route", "method", "status"])
#: ListImages answers of the gateway: "kept" (the catalog said unchanged) or "rendered".
LIST_ANSWERS = Counter("imgapi_gateway_list_answers_total", "ListImages answers by origin", ["origin"])
HTTP_LATENCY = Histogram(
    "imgapi_http_request_seconds",
    "HTTP request handling time until the response starts",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600),
)


_HTTP_COUNTS: dict[tuple[str, str, str], Any] = {}
_HTTP_TIMES: dict[tuple[str, str], Any] = {}


def observe_http(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request and its latency. The labelled children are looked up once
    per label set (routes, httptools' methods and statuses are finite sets)."""
    key = (route, method, str(status))
    counter = _HTTP_COUNTS.get(key)
    if counter is None:
        counter = _HTTP_COUNTS[key] = HTTP_REQUESTS.labels(*key)
    counter.inc()
    timer = _HTTP_TIMES.get(key[:2])
    if timer is None:
        timer = _HTTP_TIMES[(route, method)] = HTTP_LATENCY.labels(route, method)
    timer.observe(seconds)


#: Metric name prefixes each service exposes on its /metrics (besides process_/python_ metrics).
OWN_METRICS: dict[str, tuple[str, ...]] = {
    "catalog": ("imgapi_grpc_",),
    "blob": ("imgapi_grpc_", "imgapi_blob_"),
    "replication": ("imgapi_grpc_", "imgapi_replication_"),
    "gateway": ("imgapi_http_", "imgapi_gateway_"),
}
_STANDARD_METRICS = ("process_", "python_")

#: The service this process runs (set by configure_logging).
_service = ""


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": utc_ts(record.created),
            "level": record.levelname.lower(),
            "service": getattr(record, "service", self.service),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", "") or request_id.get()
        if rid:
            out["request_id"] = rid
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    """For a terminal: ``HH:MM:SS level service: message [request id]``, tracebacks as text."""

    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(service)s: %(message)s", "%H:%M:%S")
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        # A process hosting several services tags each record with its own (imgapi_cli/monolith.py).
        if not hasattr(record, "service"):
            record.service = self.service
        text = super().format(record)
        rid = getattr(record, "request_id", "") or request_id.get()
        return f"{text} [{rid}]" if rid else text


def configure_logging(service: str, level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Route all logging (uvicorn's and grpc's included) to stderr in this process's one format."""
    global _service
    _service = service
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(HumanFormatter(service) if is_terminal(out) else JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn installs its own plain-text handlers unless told not to; ours replace them.
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


def announce(msg: str, **fields: Any) -> None:
    """A start-up line on stdout (where the service listens), in the process's log format."""
    if is_terminal(sys.stdout):
        print(msg, flush=True)
    else:
        print(json_line(_service or "imgapi", "info", msg, fields), flush=True)


def refuse(service: str, msg: str) -> None:
    """Why a service will not start, on stderr in the process's log format (a person at a terminal
    reads plain text; a supervisor or log shipper gets one JSON line at level ``error``)."""
    if is_terminal(sys.stderr):
        print(f"{service}: {msg}", file=sys.stderr, flush=True)
    else:
        print(json_line(service, "error", msg), file=sys.stderr, flush=True)


class _OwnMetrics:
    """The default registry seen through a filter: only the metric families of one service."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes + _STANDARD_METRICS

    def collect(self) -> Iterable[Metric]:
        return [m for m in REGISTRY.collect() if m.name.startswith(self.prefixes)]


def service_registry(service: str) -> CollectorRegistry:
    """A registry exposing only ``service``'s own metrics (see :data:`OWN_METRICS`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_OwnMetrics(OWN_METRICS.get(service, ("imgapi_",))))  # type: ignore[arg-type]
    return registry


def start_metrics_server(port: int, host: str = "127.0.0.1", tries: int = 1, service: str = "") -> int:
    """Serve ``/metrics`` on ``host:port`` (0 = no metrics server). Returns the port.

    Only the metrics of ``service`` (default: the one given to :func:`configure_logging`) are
    exposed. With ``tries`` > 1 the next ports are tried when one is taken (worker processes of
    one service each get their own port: port, port+1, ...).
    """
    if port <= 0:
        return 0
    registry = service_registry(service or _service)
    for candidate in range(port, port + max(1, tries)):
        try:
            start_http_server(candidate, addr=host, registry=registry)
            return candidate
        except OSError:
            if candidate == port + max(1, tries) - 1:
                raise
    return 0


def _split(full_method: str) -> tuple[str, str]:
    _, service, method = full_method.split("/", 2)
    return service, method


class _MethodStats:
    """Pre-resolved metric children of one RPC method (label lookups cost more than the RPC)."""

    def __init__(self, service: str, method: str, log_it: bool) -> None:
        self.service, self.method, self.log_it = service, method, log_it
        self.latency = GRPC_LATENCY.labels(service, method)
        self._counts: dict[str, Any] = {}

    def record(self, code: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        self.latency.observe(elapsed)
        counter = self._counts.get(code)
        if counter is None:
            counter = self._counts[code] = GRPC_REQUESTS.labels(self.service, self.method, code)
        counter.inc()
        if self.log_it:
            access_log.info("rpc %s/%s %s %.1fms", self.service, self.method, code, elapsed * 1000)


def _request_id_of(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_METADATA:
            return str(value)
    return str(uuid.uuid4())


class ObservabilityInterceptor(MethodWrappingInterceptor):
    """Sets the request id from metadata and records request counts and latencies.

    The wrapped handler of each method is built once and cached (see
    :class:`~imgapi_common.method_interceptor.MethodWrappingInterceptor`). With ``access_log``
    every RPC also logs one line (method, code, duration, request id); it is off by default: a log
    line per call costs more than a GetImage.
    """

    def __init__(self, access_log: bool = False) -> None:
        super().__init__()
        self.access_log = access_log

    def wrappers(self, full_method: str) -> Wrappers:
        try:
            service, method = _split(full_method)
        except ValueError:
            service, method = "unknown", full_method
        stats = _MethodStats(service, method, self.access_log)

        @contextlib.contextmanager
        def observed(context: grpc.ServicerContext) -> Iterator[None]:
            """Request id in the log context, then the call's status counted and timed."""
            token = request_id.set(_request_id_of(context))
            start = time.perf_counter()
            failed = False
            try:
                yield
            except Exception:
                failed = True
                raise
            finally:
                stats.record(_code_of(context, default="UNKNOWN" if failed else "OK"), start)
                request_id.reset(token)

        def wrap_unary(fn: Callable[..., Any]) -> Callable[..., Any]:
            def inner(request: Any, context: grpc.ServicerContext) -> Any:
                with observed(context):
                    return fn(request, context)

            return inner

        def wrap_stream_out(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
            def inner(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                with observed(context):
                    yield from fn(request, context)

            return inner

        return wrap_unary, wrap_stream_out


access_log = logging.getLogger("imgapi.access")


def _code_of(context: grpc.ServicerContext, default: str) -> str:
    code = context.code() if hasattr(context, "code") else None
    if code is None:
        return default
    if isinstance(code, grpc.StatusCode):
        return code.name
    return str(code)
