"""The progress messages of a Docker import, in the shapes Docker clients read: compact JSON objects
whose ``id`` is the repository's canonical name (second in ``error`` objects, last elsewhere)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

#: Bytes between two ``Downloading`` messages of one layer.
DOWNLOADING_EVERY = 524288


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Progress:
    """Writes the messages of one import to ``emit`` (thread-safe: layers report in parallel)."""

    def __init__(self, canonical_name: str, emit: Callable[[str], None]) -> None:
        self.id = canonical_name
        self._emit = emit
        self._lock = threading.Lock()

    def _send(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self._emit(dumps(obj))

    def status(self, text: str) -> None:
        self._send({"type": "status", "payload": {"status": text}, "id": self.id})

    def layer_queued(self, short: str) -> None:
        self._send(
            {
                "type": "status",
                "payload": {"id": short, "progressDetail": {}, "status": "Pulling fs layer"},
                "id": self.id,
            }
        )

    def layer(self, short: str, text: str) -> None:
        self._send({"type": "progress", "payload": {"id": short, "status": text}, "id": self.id})

    def downloading(self, short: str, current: int, total: int, start: int) -> None:
        detail = {"current": current, "total": total, "start": start}
        self._send(
            {
                "type": "progress",
                "payload": {"id": short, "status": "Downloading", "progressDetail": detail},
                "id": self.id,
            }
        )

    def created(self, fields: dict[str, Any]) -> None:
        self._send({"type": "create-docker-image", **fields, "id": self.id})

    def error(self, code: str, message: str) -> None:
        self._send({"type": "error", "id": self.id, "error": {"code": code, "message": message}})
