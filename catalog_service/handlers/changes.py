"""The change feed: reading it, its head, and following it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from catalog_service.adapters.db.repository import Change
from catalog_service.adapters.db.rows import dump_record
from catalog_service.handlers.core import CatalogCore


class ChangeFeedHandlers(CatalogCore):
    """The change feed, read after a cursor or followed."""

    def changes_after(self, cursor: int, limit: int = 500) -> list[Change]:
        with self.uow.read() as conn:
            return self.repo.changes_after(conn, cursor, limit)

    def changes_head(self) -> int:
        """The newest cursor of the feed (0 when empty)."""
        with self.uow.read() as conn:
            return self.repo.changes_head(conn)

    def follow_changes(
        self, cursor: int, *, replay_only: bool, is_active: Callable[[], bool], poll_seconds: float = 0.25
    ) -> Iterator[Change]:
        """Replay the feed after ``cursor``, then follow it (other replicas' writes are polled)."""
        while is_active():
            batch = self.changes_after(cursor)
            for ch in batch:
                yield ch
                cursor = ch.cursor
            if batch:
                continue
            if replay_only:
                return
            self.uow.wait_for_change(poll_seconds)

    @staticmethod
    def dump(rec: Mapping[str, Any]) -> str:
        return dump_record(rec)
