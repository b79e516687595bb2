"""Planner statistics for the embedded SQLite database, kept up to date as the catalog grows.

Without statistics SQLite's planner guesses, and for ListImages it guesses the ordered walk of
``ix_images_state_order`` for everything: ``owner=X`` then reads every active image to return the
handful X owns (14 ms at 10k images instead of 1.3 ms through ``ix_images_owner``). PostgreSQL's
autovacuum keeps its statistics; SQLite has nothing of the kind, so the catalog runs ``ANALYZE``
itself, inside a write transaction (statistics are data like any other), whenever the number of
writes this process has made reaches the next power of two from 64 on: at most a few dozen times in
a process's life, each bounded by ``PRAGMA analysis_limit`` (SQLite samples that many index
entries instead of reading them all: milliseconds even at 100k images). Statistics only choose
plans; answers are the same with or without them.
"""

from __future__ import annotations

import threading

#: Index entries SQLite reads per index when analyzing (its recommended range is 100-1000).
ANALYSIS_LIMIT = 1000
FIRST_ANALYZE_AT = 64


class AnalyzeSchedule:
    """Counts write transactions; says when the next one should refresh the statistics, and how
    many refreshes were committed (``runs``).

    SQLite loads the statistics into a connection when it opens it (reads its schema), and an
    ANALYZE on one connection does not reload them in the others: a connection kept open reads
    with the statistics of its opening. Connections remember the ``runs`` they opened at, and one
    that is behind is replaced before it is used again (catalog_service/adapters/db/engine.py,
    unit_of_work.py)."""

    def __init__(self, first: int = FIRST_ANALYZE_AT) -> None:
        self._writes = 0
        self._next = first
        self._lock = threading.Lock()
        self.runs = 0

    def committed(self) -> None:
        """A transaction that refreshed the statistics committed."""
        with self._lock:
            self.runs += 1

    def due(self) -> bool:
        with self._lock:
            self._writes += 1
            if self._writes < self._next:
                return False
            self._next *= 2
            return True


#: Run in the write transaction the schedule picked.
ANALYZE_STATEMENTS = (f"PRAGMA analysis_limit={ANALYSIS_LIMIT}", "ANALYZE")
