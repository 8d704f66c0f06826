"""The catalogue and its scores, snapshotted once per change instead of read per request.

A chat call used to read every catalogue entry and every Score row before deciding; the
catalogue changes a few times a day.  ``CatalogueCache.get`` returns the current immutable
snapshot (router candidates + entries) and rebuilds it only after a change, which
``watch.ChangeWatcher`` and the ORM events report (see ``watch`` for the three ways).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from .catalog import ModelEntry, list_models
from .db import session_scope
from .routing.candidates import Candidate
from .routing.index import CatalogueIndex
from .routing.snapshot import load_candidates
from .scores import Score
from .settings import Settings
from .watch import ChangeWatcher, watch_orm

CHANNEL = "modelyard:catalogue"
FINGERPRINT = (
    "SELECT (SELECT count(*) FROM models), (SELECT max(updated_at) FROM models), "
    "(SELECT max(health_checked_at) FROM models), (SELECT count(*) FROM scores), "
    "(SELECT max(id) FROM scores)"
)


@dataclass(frozen=True)
class CatalogueSnapshot:
    """What routing reads, as of one moment; shared read-only between threads."""

    candidates: list[Candidate]
    entries: dict[str, ModelEntry]
    index: CatalogueIndex  # the candidates as columns: decisions without a Python loop


class CatalogueCache:
    """The process's catalogue snapshot, rebuilt by the first reader after a change."""

    def __init__(self, db_url: str, settings: Settings,
                 watcher: ChangeWatcher | None = None) -> None:
        self.db_url = db_url
        self.settings = settings
        self.watcher = watcher
        self._snapshot: CatalogueSnapshot | None = None
        self._stale = True
        self._lock = threading.Lock()
        watch_orm([ModelEntry, Score], self)
        if watcher is not None:
            watcher.watch(CHANNEL, FINGERPRINT, self.mark_stale)

    def mark_stale(self) -> None:
        self._stale = True

    def changed(self) -> None:
        """A change made in this process: rebuild here, and tell the other processes."""
        self._stale = True
        if self.watcher is not None:
            self.watcher.publish(CHANNEL)

    def get(self) -> CatalogueSnapshot:
        snapshot = self._snapshot
        if snapshot is not None and not self._stale:
            return snapshot
        with self._lock:
            if self._snapshot is None or self._stale:
                self._stale = False  # before reading: a change during the read marks it again
                with session_scope(self.db_url) as session:
                    candidates = load_candidates(session, self.settings)
                    entries = {e.name: e for e in list_models(session)}
                self._snapshot = CatalogueSnapshot(candidates, entries,
                                                   CatalogueIndex(candidates))
            return self._snapshot

    def peek(self) -> Mapping[str, ModelEntry]:
        """The entries of the snapshot as it is, never reading the database (may be stale)."""
        snapshot = self._snapshot
        return snapshot.entries if snapshot is not None else {}

    def refresh(self) -> CatalogueSnapshot:
        """A fresh snapshot now (a pinned name the snapshot lacks may have just been added)."""
        self._stale = True
        return self.get()


__all__ = ["CHANNEL", "CatalogueCache", "CatalogueSnapshot"]
