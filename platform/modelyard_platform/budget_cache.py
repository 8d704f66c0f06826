"""Which teams have no budget, from memory: admission skips the team row read for them.

Every chat call of a team is admitted against its budget (``budget.reserve``).  For a team with
no budget that was one primary-key read, and a pooled connection, per request, for nothing: most
teams have no budget.  ``BudgetFreeTeams`` remembers the teams found without one; a team with a
budget is never remembered, so its calls keep the reservation path (exact under concurrency).

Giving a team a budget must take effect promptly everywhere, as a revoked key does
(``keycache``): a change to ``teams`` made through the ORM in this process forgets every team
here at once and is broadcast on Redis to the other API processes; a change made elsewhere
(``yard teams budget`` in another process, hand-written SQL) is seen within the watcher's
interval by its fingerprint (the number and the id sum of the teams that have a budget).  Until
then a call of the newly budgeted team is admitted as it was a moment before, the same window a
request that read the team row just before the change always had.
"""

from __future__ import annotations

import threading

from modelyard_registry.watch import ChangeWatcher, watch_orm

from .models import Team

CHANNEL = "modelyard:budgets"
FINGERPRINT = ("SELECT count(*), coalesce(sum(id), 0) FROM teams "
               "WHERE budget_usd IS NOT NULL")
MAX_TEAMS = 100_000


class BudgetFreeTeams:
    def __init__(self, watcher: ChangeWatcher | None = None) -> None:
        self.watcher = watcher
        self._free: set[int] = set()
        self._lock = threading.Lock()
        self.generation = 0
        """Read before the team row; ``remember`` ignores what was read before a change."""
        watch_orm([Team], self)
        if watcher is not None:
            watcher.watch(CHANNEL, FINGERPRINT, self.clear)

    def __contains__(self, team_id: int) -> bool:
        return team_id in self._free

    def remember(self, team_id: int, generation: int) -> None:
        """``team_id`` had no budget when read at ``generation`` (dropped if a change came)."""
        with self._lock:
            if generation == self.generation and len(self._free) < MAX_TEAMS:
                self._free.add(team_id)

    def clear(self) -> None:
        with self._lock:
            self._free = set()
            self.generation += 1

    def changed(self) -> None:
        """A team changed in this process: forget every team here and everywhere."""
        self.clear()
        if self.watcher is not None:
            self.watcher.publish(CHANNEL)


__all__ = ["CHANNEL", "BudgetFreeTeams"]
