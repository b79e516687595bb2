"""WAL checkpoints of the embedded SQLite database, on a thread of their own.

In WAL mode each commit appends its pages to the ``-wal`` file, and a checkpoint copies them back
into the database file, with an fsync of each file (``synchronous=NORMAL`` syncs at checkpoints
only). SQLite runs one by default inside the commit that grows the WAL past 1,000 pages: on the
thread that writes, which for the embedded stack is the gateway's event loop (the catalog is called
on the caller's thread, catalog_service/api/local.py). Every ~60 image writes the loop then stood
still for the copy and two fsyncs, longer as the database grew.

Here the connections' own checkpoints are left as a backstop only (:data:`BACKSTOP_PAGES`), and a
thread with its own connection runs ``PRAGMA wal_checkpoint(PASSIVE)`` after every
:data:`EVERY_WRITES` write transactions, and within :data:`IDLE_SECONDS` of any other write.
A passive checkpoint never waits for readers or writers; SQLite releases the GIL while it runs, so
the loop keeps serving. Durability is unchanged: a commit is in the WAL file when it returns,
checkpointed or not.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

#: Write transactions between two checkpoints (an image write adds ~15-20 WAL pages, so about the
#: 1,000 pages at which SQLite would checkpoint by itself).
EVERY_WRITES = 64
#: A checkpoint also follows the last write by at most this long (the WAL is not left unsynced
#: into the database file for long after a burst).
IDLE_SECONDS = 1.0
#: A passive checkpoint copies the WAL into the database but cannot restart it while writes keep
#: coming (a writer starts the WAL over only when everything in it was copied before it began).
#: Past this many pages (~16 MiB), the checkpoint after the passive one is ``RESTART``: it holds
#: the write lock while it copies the few pages written since and waits for readers, so that the
#: next write starts the WAL over. Writers wait meanwhile (SQLite's busy handler sleeps 1, 2, 5 ms
#: ...): a few ms about every 250 image writes, where the inline checkpoints stalled every ~60.
RESTART_FRAMES = 4_000
#: The connections' own ``wal_autocheckpoint``: if this thread ever falls that far behind, the
#: committing connection checkpoints as SQLite would by default (bounds the WAL at ~40 MiB).
BACKSTOP_PAGES = 10_000


class WalCheckpointer:
    """Counts write transactions and checkpoints the database at ``path`` from its own thread,
    started by the first write; :meth:`close` stops it (a later write starts another)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._every = EVERY_WRITES
        self._idle = IDLE_SECONDS
        self._restart_frames = RESTART_FRAMES
        self._writes = 0  # since the last checkpoint began
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Checkpoints run so far, and of them those that restarted the WAL (tests).
        self.runs = 0
        self.restarts = 0

    def wrote(self) -> None:
        """A write transaction began (called on the writer's thread: a counter and, now and
        then, a wake-up)."""
        self._writes += 1  # a lost increment under a race only delays a checkpoint
        if self._thread is None:
            self._start()
        if self._writes >= self._every:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="sqlite-checkpoint", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _run(self, stop: threading.Event) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            # RESTART waits for the writer lock, then (holding it) for readers: bounded stalls
            conn.execute("PRAGMA busy_timeout=2000")
            conn.execute("PRAGMA cache_size=-256")  # it copies pages, it caches none
            while True:
                if self._wake.wait(self._idle):
                    self._wake.clear()
                if stop.is_set():
                    return
                if not self._writes:
                    continue
                self._writes = 0
                try:
                    _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= self._restart_frames:
                        # busy (1): a writer or reader held on past the timeout; the next one retries
                        busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
                        self.restarts += not busy
                    self.runs += 1
                except sqlite3.Error:
                    log.exception("WAL checkpoint of %s failed (the commits' own will take over)", self._path)
        finally:
            conn.close()
