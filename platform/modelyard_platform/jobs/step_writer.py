"""A running job's product events, written at most once per ``GAP_S`` per job.

Each step event was a commit of its own, under the lease: two of an ``echo`` job's four commits
on the worker, and on PostgreSQL each commit waits for its WAL flush (0.9-1.6 ms here, #15).
Now an event that comes less than ``GAP_S`` after the job's last write (its claim, or its last
events) waits: it goes in with the next write, whichever comes first of the job's next event
after the gap, its outcome (one transaction, ``store.finish(steps=...)``) or the process's
flusher thread at the gap's end.  A short job's events then ride with its outcome, while a
watcher of a long job sees each event at most ``GAP_S`` late.

What the lease check guarantees stays the same in kind: a step starts only if this worker held
the lease at most ``GAP_S`` ago (an event after a quieter spell is written, with its check, at
once).  A worker frozen past its lease was frozen for seconds, so it stops at its next step as
before; nothing it wrote is lost (every write keeps the lease in its ``WHERE``) and its usage
rows are fenced (``fence.LeaseFence``).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import Enum

from sqlmodel import Session

from ..models import JobStatus
from . import store
from .events import EventBus
from .store import StepEvent

log = logging.getLogger(__name__)

GAP_S = 0.01


class Stop(Enum):
    """Why a write was refused: the job was cancelled, or another worker holds it now."""

    cancelled = "cancelled"
    lost = "lost"


class StepWriter:
    """One job's pending events under one worker's lease (thread-safe: the flusher writes too)."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]], bus: EventBus,
                 job_id: str, owner: str, flusher: Flusher | None = None) -> None:
        self.job_id, self.owner = job_id, owner
        self._sessions, self._bus = sessions, bus
        self._flusher = flusher if flusher is not None else FLUSHER
        self._lock = threading.Lock()
        self._pending: list[StepEvent] = []
        self._written = time.monotonic()  # the claim has just committed
        self._closed = False
        self.stopped: Stop | None = None

    def add(self, event: StepEvent) -> Stop | None:
        """Queue the event, writing it (and any before it) at once after a quiet spell.

        Returns why this worker must stop, if a write (this one or an earlier one) was refused.
        The event's data is copied as JSON now: a value that cannot be stored fails here, in
        the product's thread, and a later change to the product's objects changes nothing.  A
        database error of a write made here is raised, as an unbatched write's would be.
        """
        event = StepEvent(event.type, json.loads(json.dumps(event.data)), event.progress)
        with self._lock:
            if self.stopped is None and not self._closed:
                self._pending.append(event)
                due = self._written + GAP_S
                if time.monotonic() < due:
                    if len(self._pending) == 1:
                        self._flusher.schedule(self, due)
                else:
                    self._write()
            return self.stopped

    def flush(self) -> None:
        """Write what is pending (the flusher's call, at a gap's end)."""
        with self._lock:
            if self._pending and self.stopped is None and not self._closed:
                try:
                    self._write()
                except Exception as exc:  # kept, and tried again a second later
                    log.warning("job %s: step events not written yet (%s)", self.job_id, exc)
                    self._flusher.schedule(self, time.monotonic() + 1.0)

    def take(self) -> list[StepEvent]:
        """The events not written yet, for the job's last transaction; nothing more is written."""
        with self._lock:
            self._closed = True
            pending, self._pending = self._pending, []
            return pending

    @contextmanager
    def last_events(self) -> Iterator[list[StepEvent]]:
        """``take``, for the transaction that ends the job; written alone if that write fails.

        Best effort, under the lease: a job resumed from its checkpoint does not emit its
        finished nodes' events again, so they would otherwise be missing from its log.
        """
        pending = self.take()
        try:
            yield pending
        except Exception:
            self._salvage(pending)
            raise

    def _salvage(self, pending: list[StepEvent]) -> None:
        if not pending:
            return
        try:
            with self._sessions() as session:
                stored = store.add_held_step_events(session, self.job_id, self.owner, pending)
        except Exception as exc:
            log.warning("job %s: %d step events lost with the outcome's write (%s)",
                        self.job_id, len(pending), exc)
            return
        if stored is not None:
            self._bus.announce(self.job_id, stored)

    def _write(self) -> None:
        """Write the pending events in one commit under the lease (the caller holds the lock)."""
        with self._sessions() as session:
            stored = store.add_held_step_events(session, self.job_id, self.owner,
                                                self._pending)
            if stored is None:
                state = store.lease_state(session, self.job_id)
                running = state is not None and state[0] == JobStatus.running
                self.stopped = Stop.lost if running else Stop.cancelled
        self._pending = []
        self._written = time.monotonic()
        if stored is not None:
            self._bus.announce(self.job_id, stored)


class Flusher:
    """The process's thread that writes each job's pending events when their gap ends."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """Fresh state; in a forked child too, whose copy of the lock another thread may hold."""
        self._due: list[tuple[float, int, StepWriter]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, writer: StepWriter, at: float) -> None:
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(self._wake,),
                                                name="step-flusher", daemon=True)
                self._thread.start()
            earliest = self._due[0][0] if self._due else None
            heapq.heappush(self._due, (at, next(self._order), writer))
            if earliest is None or at < earliest:
                self._wake.notify()

    def _run(self, wake: threading.Condition) -> None:
        while True:
            with wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, writer = heapq.heappop(self._due)
            writer.flush()


FLUSHER = Flusher()

__all__ = ["FLUSHER", "GAP_S", "Flusher", "StepWriter", "Stop"]
