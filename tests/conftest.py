"""Fixtures shared by every test package: real components (see components.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.components import S3Endpoint, pg_database, s3_server


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (migrated by whoever uses it)."""
    with pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with s3_server() as ep:
        yield ep
