"""Best-effort sends off a request's or a job's path: a thread sends queued items in batches.

Used for job event announcements and for accepted jobs' broker messages (#15).  Only for
what may arrive late or not at all without losing anything: the database row is written and
committed before its item is queued, and the system recovers a lost item from the row (a
listener re-reads the events after its last number; the reconciler re-enqueues a queued job
that no worker took).

While items come, the thread polls every ``gather_s`` instead of blocking on the queue: a
blocked thread is woken by each ``put``, and on a loaded machine each wake-up cost the thread
that queued the item a context switch (a millisecond or more).  After ``idle_rounds`` empty polls
it blocks until the next item, so an idle process does not wake up 200 times a second.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Stop:
    """The item ``close`` queues: send what came before it, then end the thread."""


class Batcher(Generic[T]):
    def __init__(self, send: Callable[[list[T]], None], *, name: str, gather_s: float = 0.005,
                 idle_rounds: int = 40) -> None:
        """``send`` gets each batch in queued order; what it raises is logged, not retried."""
        self._send = send
        self._name = name
        self._gather_s = gather_s
        self._idle_rounds = idle_rounds
        self._queue: queue.SimpleQueue[T | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def put(self, item: T) -> None:
        self._started()
        self._queue.put(item)

    def close(self, timeout_s: float = 2.0) -> None:
        """Send what is queued (waiting up to ``timeout_s``) and stop the thread."""
        if self._thread is not None and self._pid == os.getpid():
            self._queue.put(_Stop())
            self._thread.join(timeout=timeout_s)

    def _started(self) -> None:
        """Start the thread of this process (a forked child starts its own, with an empty queue)."""
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()  # a parent's leftovers are not ours to send
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, args=(self._queue,),
                                                name=self._name, daemon=True)
                self._thread.start()

    def _run(self, pending: queue.SimpleQueue[T | _Stop]) -> None:
        idle = 0
        while True:
            batch: list[T | _Stop] = []
            if idle >= self._idle_rounds:
                batch.append(pending.get())
                idle = 0
            else:
                time.sleep(self._gather_s)
            while True:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                idle += 1
                continue
            items = [item for item in batch if not isinstance(item, _Stop)]
            if items:
                try:
                    self._send(items)
                except Exception as exc:  # best effort: the rows are the truth
                    log.warning("%s: could not send %d item(s): %s", self._name, len(items), exc)
            if len(items) != len(batch):
                return


__all__ = ["Batcher"]
