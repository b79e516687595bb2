"""Render deploy/envoy/envoy.yaml.tmpl into an Envoy config (the same template in tests and production).

    python deploy/envoy/render.py --listen 0.0.0.0:8080 --internal-listen 10.0.0.5:8500 \\
        --admin 127.0.0.1:9901 \\
        --gateway gw1:8080 --gateway gw2:8080 --catalog cat1:8501 --catalog cat2:8501 \\
        --blob blob1:8502 --blob blob2:8502 \\
        --descriptor /app/protos/imgapi/v1/imgapi.pb -o envoy.yaml

``--listen`` is the public listener (the IMGAPI REST surface only); ``--internal-listen`` carries
native gRPC and the transcoded catalog JSON for the gateways and the replication service: never
publish it (docs/security.md). Replica addresses are ``host:port``. A cluster whose hosts are all IP literals is ``STATIC``, otherwise
``STRICT_DNS`` (compose service names, every address a name resolves to is an endpoint). The
descriptor set is written by ``scripts/gen-protos`` (protos/imgapi/v1/imgapi.pb).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "envoy.yaml.tmpl"
REPO = HERE.parent.parent
DEFAULT_DESCRIPTOR = REPO / "protos" / "imgapi" / "v1" / "imgapi.pb"


def split_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return host, int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _endpoints(addresses: Sequence[str]) -> str:
    """A YAML flow sequence (JSON is YAML) of lb_endpoints."""
    if not addresses:
        raise ValueError("every cluster needs at least one replica address")
    eps = []
    for a in addresses:
        host, port = split_hostport(a)
        eps.append({"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}})
    return json.dumps(eps)


def _discovery(addresses: Sequence[str]) -> str:
    return "STATIC" if all(_is_ip(split_hostport(a)[0]) for a in addresses) else "STRICT_DNS"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def render(
    *,
    gateways: Sequence[str],
    catalogs: Sequence[str],
    blobs: Sequence[str],
    descriptor: Path | str = DEFAULT_DESCRIPTOR,
    listen: str = "0.0.0.0:8080",
    internal_listen: str = "127.0.0.1:8500",
    admin: str = "127.0.0.1:9901",
    health_interval_seconds: float = 5.0,
    stream_idle_timeout_seconds: float = 300.0,
    buffer_limit_bytes: int = 1024 * 1024,
    template: Path = TEMPLATE,
) -> str:
    """The Envoy config (YAML text) for these replicas."""
    listen_host, listen_port = split_hostport(listen)
    internal_host, internal_port = split_hostport(internal_listen)
    if (internal_host, internal_port) == (listen_host, listen_port):
        raise ValueError("the internal listener needs an address of its own (not the public one)")
    admin_host, admin_port = split_hostport(admin)
    values = {
        "listen_address": listen_host,
        "listen_port": listen_port,
        "internal_address": internal_host,
        "internal_port": internal_port,
        "admin_address": admin_host,
        "admin_port": admin_port,
        "descriptor": str(descriptor),
        "health_interval": _seconds(health_interval_seconds),
        "stream_idle_timeout": _seconds(stream_idle_timeout_seconds),
        "buffer_limit_bytes": buffer_limit_bytes,
        "gateway_endpoints": _endpoints(gateways),
        "catalog_endpoints": _endpoints(catalogs),
        "blob_endpoints": _endpoints(blobs),
        "gateway_discovery": _discovery(gateways),
        "catalog_discovery": _discovery(catalogs),
        "blob_discovery": _discovery(blobs),
    }
    return Template(template.read_text()).substitute(values)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gateway", action="append", required=True, help="gateway replica host:port")
    p.add_argument("--catalog", action="append", required=True, help="catalog replica host:port")
    p.add_argument("--blob", action="append", required=True, help="blob replica host:port")
    p.add_argument("--descriptor", default=str(DEFAULT_DESCRIPTOR), help="descriptor set (imgapi.pb)")
    p.add_argument("--listen", default="0.0.0.0:8080", help="public REST listener (default 0.0.0.0:8080)")
    p.add_argument(
        "--internal-listen",
        default="127.0.0.1:8500",
        help="internal gRPC/JSON listener, never published (default 127.0.0.1:8500)",
    )
    p.add_argument("--admin", default="127.0.0.1:9901", help="admin interface host:port")
    p.add_argument("--health-interval", type=float, default=5.0, help="active health check period (s)")
    p.add_argument("--stream-idle-timeout", type=float, default=300.0, help="seconds without progress")
    p.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    a = p.parse_args(argv)
    text = render(
        gateways=a.gateway,
        catalogs=a.catalog,
        blobs=a.blob,
        descriptor=a.descriptor,
        listen=a.listen,
        internal_listen=a.internal_listen,
        admin=a.admin,
        health_interval_seconds=a.health_interval,
        stream_idle_timeout_seconds=a.stream_idle_timeout,
    )
    if a.output is None:
        sys.stdout.write(text)
    else:
        a.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
