"""Fencing a job's usage rows: a worker writes a call's row only while it holds the job's lease.

A worker frozen in the middle of a model call (SIGSTOP, a long pause) can wake up after its
lease lapsed and another worker took the job over.  Its call then finishes, but its row must not
land: the job may already have finished with its cost summed, and the successor re-runs the node
anyway.  The cascade runs the fence inside the transaction of each usage row, after the row is
flushed; the fence locks the job's row (``FOR UPDATE`` on PostgreSQL; SQLite's write lock is
already held), so a claim by another worker either happened before (the row is refused and the
stale worker stops, as at its next step) or waits until the row is in (the successor then finds
the accepted call and reuses it instead of paying again).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session, col, select

from ..models import Job, JobStatus
from .runner import LeaseLost


class LeaseFence:
    """The jobs this process runs, with the lease owner each one runs under."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, job_id: str, owner: str) -> Iterator[None]:
        """While the job runs here, its usage rows are fenced by ``owner``'s lease."""
        with self._lock:
            self._owners[job_id] = owner
        try:
            yield
        finally:
            with self._lock:
                if self._owners.get(job_id) == owner:
                    del self._owners[job_id]

    def __call__(self, session: Session, job_id: str) -> None:
        """Raise ``LeaseLost`` (rolling the usage row back) unless this worker holds the lease.

        A cancelled job's last call is written all the same: the team asked for it and nobody
        else will re-run it (the job then stops at its next step).  A refused row leaves its
        reservation behind, which the job's next worker bills (``budget.bill_lost_attempts``).
        """
        with self._lock:
            owner = self._owners.get(job_id)
        if owner is None:  # not a job this process runs under a lease (e.g. a test's cascade)
            return
        row = session.exec(
            select(Job.lease_owner, Job.status).where(col(Job.id) == job_id).with_for_update()
        ).first()
        if row is None or row[1] == JobStatus.cancelled:
            return
        if row[0] != owner or row[1] != JobStatus.running:
            raise LeaseLost(job_id)


__all__ = ["LeaseFence"]
