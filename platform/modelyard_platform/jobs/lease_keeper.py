"""Renews the leases of the jobs a worker process runs, from one thread per process.

A thread per job (started at the claim, joined at the end) cost a tenth of a worker's time on
short jobs (#15).  This one wakes every sixth of a lease and renews each lease not renewed for a
third of it, so a lease goes at most half its length without renewal, as before at most a third.
A process frozen or killed stops renewing, and the reconciler hands its jobs to another worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from sqlmodel import Session

from . import store

log = logging.getLogger(__name__)


@dataclass
class _Held:
    owner: str
    renewed: float  # monotonic time of the claim or of the last renewal


class LeaseKeeper:
    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]],
                 lease_s: float) -> None:
        self._sessions = sessions
        self._lease_s = lease_s
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._pid = 0

    @contextmanager
    def hold(self, job_id: str, owner: str) -> Iterator[None]:
        """Keep ``owner``'s lease of the job alive while the block runs."""
        self._started()
        with self._lock:
            self._held[job_id] = _Held(owner, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                held = self._held.get(job_id)
                if held is not None and held.owner == owner:
                    del self._held[job_id]

    def _started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (a forked child too)
                self._pid = os.getpid()
                self._held = {}
                threading.Thread(target=self._run, name="lease-keeper", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self._lease_s / 6)
            self.renew_due()

    def renew_due(self) -> None:
        """Renew every lease not renewed for a third of its length; drop those found lost."""
        now = time.monotonic()
        with self._lock:
            due = [(job_id, held) for job_id, held in self._held.items()
                   if now - held.renewed >= self._lease_s / 3]
        for job_id, held in due:
            try:
                with self._sessions() as session:
                    kept = store.renew(session, job_id, held.owner, self._lease_s)
            except Exception as exc:  # a blip: try again next round, the lease has slack
                log.warning("lease renewal of job %s failed: %s", job_id, exc)
                continue
            with self._lock:
                if not kept:  # taken over or ended: the job stops at its next step
                    if self._held.get(job_id) is held:
                        del self._held[job_id]
                else:
                    held.renewed = now


__all__ = ["LeaseKeeper"]
