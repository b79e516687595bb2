"""Replication fixtures: the shape (embedded, production) the DCs and job stores run on."""

from __future__ import annotations

import pytest

from tests.components import SHAPES, Shape


@pytest.fixture(params=SHAPES)
def shape(request: pytest.FixtureRequest) -> Shape:
    """Embedded: SQLite + blob dirs. Production: catalogs and job store on PostgreSQL, blobs on S3."""
    return Shape.of(request, request.param)
