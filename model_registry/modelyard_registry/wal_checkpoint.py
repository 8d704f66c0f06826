"""SQLite WAL checkpoints on a thread of their own, not inside a request's commit.

SQLite copies the write-ahead log back into the database file (and fsyncs it) in whichever
commit pushes the log past ``wal_autocheckpoint`` pages (1,000 by default).  A usage row's
commit writes about a dozen pages, so every ~80th chat request through ``yard api`` paid that
checkpoint inside its own answer: 4-6 ms on top of a ~1.9 ms request, the whole of the
sequential p99 (``bench/gateway_overhead.py``, #15).  The group committer's connection turns
automatic checkpoints off and this thread runs a ``PASSIVE`` checkpoint shortly after commits
instead: it copies what no reader still needs without taking the write lock, so commits go on
meanwhile, and SQLite releases the GIL while it copies and syncs.

Nothing about durability changes: a committed transaction is in the log either way, and a
checkpoint only moves pages already committed.  Other processes' connections keep SQLite's
automatic checkpoints, so the log stays bounded even if this process stops.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL_S = 0.2
"""How soon after a commit its pages are checkpointed; at most this often."""


def no_autocheckpoint(dbapi_connection: sqlite3.Connection, _record: object = None) -> None:
    """Leave this connection's commits free of checkpoints (a ``WalCheckpointer`` runs them).

    An engine's ``connect`` listener as it stands.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


class WalCheckpointer:
    """Checkpoints ``db_file``'s log on a daemon thread, ``INTERVAL_S`` after ``committed``."""

    def __init__(self, db_file: Path, interval_s: float = INTERVAL_S) -> None:
        self.db_file = db_file
        self.interval_s = interval_s
        self.checkpoints = 0
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelyard-wal-checkpoint",
                                        daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A commit added pages to the log: checkpoint them soon."""
        self._dirty.set()

    def close(self) -> None:
        """Stop the thread after one last checkpoint of what is pending."""
        self._stop.set()
        self._dirty.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                self._dirty.wait()
                stopping = self._stop.wait(self.interval_s)  # let commits gather meanwhile
                self._dirty.clear()
                try:
                    if connection is None:
                        connection = sqlite3.connect(self.db_file, timeout=30)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # the next commit's wake-up tries again
                    log.warning("WAL checkpoint of %s failed: %s", self.db_file, exc)
                    if connection is not None:
                        connection.close()
                    connection = None
                if stopping:
                    return
        finally:
            if connection is not None:
                connection.close()


__all__ = ["INTERVAL_S", "WalCheckpointer", "no_autocheckpoint"]
