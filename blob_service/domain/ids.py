"""Upload and blob ids: 32 lower-case hex characters, generated here and validated on every way in.

Storage keys and paths are derived only from ids that passed :func:`checked_id`, so no request can
name a location outside the data directory or the bucket prefixes.
"""

from __future__ import annotations

import re
import uuid

from blob_service.domain.errors import BlobError

_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    return uuid.uuid4().hex


def checked_id(value: str, kind: str = "id") -> str:
    """``value`` if it is a well-formed id, else InvalidId."""
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise BlobError("InvalidId", f"invalid {kind} {value[:80]!r}: expected 32 lower-case hex digits")
    return value
