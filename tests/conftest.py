"""Fixtures shared by every test package: real components (see components.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.components import S3Endpoint, pg_database, s3_server

#: scripts/mutation: mutated code runs traced and slower (no deadlines), and a mutant's verdict must
#: not depend on the random examples drawn (derandomized).
settings.register_profile("mutation", deadline=None, derandomize=True, database=None)
if os.environ.get("IMGAPI_HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["IMGAPI_HYPOTHESIS_PROFILE"])


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (migrated by whoever uses it)."""
    with pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with s3_server() as ep:
        yield ep
