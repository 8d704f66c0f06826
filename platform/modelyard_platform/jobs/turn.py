"""A worker's turn: one broker message runs queued jobs back to back while fresh ones wait.

With one message per job, a worker process ran a job, handed its result to the prefork parent,
waited for the ack (a Redis round trip) and for the next message before it could claim the next
job, and the API published a message per job (#15).  A turn instead claims the fairest queued
job again as soon as one ends (every claim is the fair-share pick, so teams still alternate),
until none waits or ``budget_s`` has passed; then it asks for another turn (``wake``), so a long
burst still gives the broker's other messages (retries, the reconciler's) their place.

Per job nothing changes: each one is claimed under its own lease, runs, and finishes in its own
transactions, exactly as a job run from its own message.  The budget is checked between jobs
only, so a turn's later job has Celery's time limits less what the turn already spent (at most
``budget_s``, a second by default, against a limit of minutes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .runner import IDLE, JobRunner, Transient

log = logging.getLogger(__name__)


@dataclass
class Turn:
    runner: JobRunner
    budget_s: float
    wake: Callable[[], object]
    """Ask for another turn (one is sent unless one already waits, ``wake.Waker``)."""
    retry: Callable[[str, int], None]
    """Send a requeued job's own delayed message: ``(job id, retries it had)``."""

    def __post_init__(self) -> None:
        self.runner.others_wait = self.ask_for_help

    def ask_for_help(self) -> None:
        """Have another worker woken (unless a wake-up already waits) while jobs still wait.

        Called as a job is claimed and more wait: a turn runs its jobs one after another, so
        jobs submitted together would otherwise queue behind a long one while other worker
        processes sit idle, or behind a worker frozen mid-turn until the reconciler's round.
        Under a burst it costs a failed ``SET NX``: a wake-up already waits.
        """
        try:
            self.wake()
        except Exception as exc:  # Redis or the broker away: the reconciler still covers
            log.warning("could not wake another worker: %s", exc)

    def take(self, job_id: str | None = None, retries: int = 0) -> list[str]:
        """Run ``job_id``'s turn (None: the fairest queued job's), then more; the outcomes.

        A transient failure ends the turn: the job was requeued and gets its own delayed
        message, and whatever broke it (the database, a backend) likely breaks the next job too.
        """
        deadline = time.monotonic() + self.budget_s
        outcomes: list[str] = []
        while True:
            try:
                outcome = self.runner.run(job_id, retries=retries)
            except Transient as exc:
                if exc.job_id:
                    self.retry(exc.job_id, retries)
                outcomes.append(f"requeued for a retry ({exc})")
                return outcomes
            outcomes.append(outcome)
            if outcome == IDLE:
                return outcomes
            if time.monotonic() >= deadline:
                self.ask_for_help()
                return outcomes
            job_id, retries = None, 0


__all__ = ["Turn"]
