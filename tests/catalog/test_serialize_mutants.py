"""Timestamps in API views do not depend on the server's time zone (a surviving mutant)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from catalog_service.domain.serialize import format_timestamp


def test_timestamps_are_utc_whatever_the_server_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        aware = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
        assert format_timestamp(aware) == "2024-05-01T12:00:00.123Z"
        assert format_timestamp(datetime(2024, 5, 1, 12, 0, 0)) == "2024-05-01T12:00:00.000Z"  # naive: UTC
    finally:
        monkeypatch.undo()
        time.tzset()
