"""The catalog's notion of "now", in IMGAPI's timestamp format."""

from __future__ import annotations

from datetime import UTC, datetime

from catalog_service.domain.serialize import format_timestamp


def now_timestamp() -> str:
    """Now as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (exactly three fraction digits)."""
    return format_timestamp(datetime.now(UTC))
