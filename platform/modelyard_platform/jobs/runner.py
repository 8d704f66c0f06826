"""Runs one job in a worker: claim the row, run the product with a renewed lease, finish once.

What makes a job finish exactly once whatever happens to the worker:
- the claim is a conditional UPDATE: only one worker holds a running job, under a lease;
- the lease is renewed by the process's lease keeper; a dead worker stops renewing and the
  reconciler hands the job to another worker, whose product run resumes from the LangGraph
  checkpoint (thread id = job id), so finished nodes are neither re-run nor billed again;
- only the lease holder can write the outcome, and only while the job is still running.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard_agents.contract import RunContext
from modelyard_registry.errors import ModelyardError
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.routing.options import RoutingOptions
from modelyard_registry.settings import Settings
from pydantic import ValidationError
from sqlmodel import Session

from ..errors import describe, error_detail
from ..models import Job, JobStatus
from ..products import ProductLike
from . import fair, store
from .events import EventBus
from .lease_keeper import LeaseKeeper
from .step_writer import StepWriter, Stop
from .store import StepEvent
from .transient import is_transient

if TYPE_CHECKING:
    from .fence import LeaseFence

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]


class JobCancelled(Exception):
    """Raised inside a running product when its job was cancelled; unwinds the graph."""


class LeaseLost(JobCancelled):
    """Raised inside a running product whose worker no longer holds the job's lease.

    A worker frozen past its lease (SIGSTOP, a long GC pause, a lost network) wakes up to find
    another worker running its job: it stops at its next step and writes nothing more.
    """


class Transient(Exception):
    """A failure worth retrying later (backend down, database busy); ``job_id`` was requeued.

    The job is named because a turn may have run another job than its message's (fair share,
    or a turn that runs several), and the retry's message must be that job's own.
    """

    def __init__(self, message: str, job_id: str = "") -> None:
        super().__init__(message)
        self.job_id = job_id


@dataclass
class JobContext(RunContext):
    """What a product sees of its job, plus the steps the worker counts for progress."""

    steps: tuple[str, ...] = ()
    finished: set[str] = field(default_factory=set)


IDLE = "not claimable (finished, cancelled, or held by a live worker)"


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def job_error(exc: BaseException) -> dict[str, Any]:
    """A failed job's ``error``: a pydantic error here is the product's output failing its model."""
    return describe(exc, invalid_type="invalid_output")


class JobRunner:
    """Everything one worker process needs to run jobs (built once per process)."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        cascade: Cascade,
        bus: EventBus,
        products: dict[str, ProductLike],
        fence: LeaseFence | None = None,
    ) -> None:
        """``fence`` is the one ``cascade`` runs on its usage rows (``fence``), if any."""
        self.fence = fence
        self.settings = settings
        self.sessions = sessions
        self.cascade = cascade
        self.bus = bus
        self.products = products
        self.leases = LeaseKeeper(sessions, settings.job_lease_s)
        # Called when a fair-share claim leaves more fresh jobs queued (``turn`` wakes a worker).
        self.others_wait: Callable[[], None] = lambda: None

    def run(self, job_id: str | None, *, retries: int = 0) -> str:
        """Run the job if this worker can claim it; returns what happened (for logs and tests).

        ``job_id`` None: the fairest fresh queued job (a turn's next job), ``IDLE`` if none.
        Raises ``Transient`` when the job was given back to the queue for a later retry.
        """
        owner = owner_id()
        with self.sessions() as session:
            claimed = self._claim(session, job_id, owner, retries)
            if claimed is None:
                return IDLE
            job, running_seq = claimed
            if job.attempts > self.settings.job_max_attempts:
                store.finish(session, job.id, owner, JobStatus.failed, error=error_detail(
                    "gave_up", f"gave up after {job.attempts - 1} deliveries "
                               "(each worker died or hit the time limit)",
                ))
                self.bus.announce(job.id, 0)
                return "gave up"
            # The claimed job may not be the message's (fair share): announce and lease *it*.
            if running_seq is not None:
                self.bus.announce(job.id, running_seq)
        fenced = self.fence.hold(job.id, owner) if self.fence is not None else nullcontext()
        with self.leases.hold(job.id, owner), fenced:
            return self._execute(job, owner, retries)

    def _claim(self, session: Session, job_id: str | None, owner: str, retries: int
               ) -> tuple[Job, int | None] | None:
        """Claim the job this message is a turn for: its own, or the fairest queued one.

        A retry or a stale lease is claimed by id; a fresh job's message goes to the team with
        the fewest running jobs (``fair``). Two workers racing for the same candidate: the
        loser tries the next one.
        """
        lease_s, most = self.settings.job_lease_s, self.settings.job_max_attempts
        if job_id is not None and (retries > 0 or fair.own_turn(session, job_id)):
            claimed = store.claim_and_start(session, job_id, owner, lease_s, max_attempts=most)
            if claimed is not None or retries > 0:
                return claimed
            # Its job already ran on another message's turn (fair share): this message is then
            # that job's turn, or a queued job would wait for the reconciler with no message.
        for _ in range(3):
            candidates = fair.fair_candidates(session)
            if not candidates:
                return None
            for n, candidate in enumerate(candidates, 1):
                claimed = store.claim_and_start(session, candidate, owner, lease_s,
                                                max_attempts=most)
                if claimed is not None:
                    if n < len(candidates):
                        self.others_wait()
                    if job_id is not None and candidate != job_id:
                        log.info("message for job %s runs job %s (fair share)", job_id, candidate)
                    return claimed
        return None

    def _execute(self, job: Job, owner: str, retries: int) -> str:
        product = self.products.get(job.product)
        steps = StepWriter(self.sessions, self.bus, job.id, owner)
        try:
            if product is None:
                raise ModelyardError(f"product {job.product!r} is not installed on this worker")
            ctx = self._context(job, product, steps)
            output = product.run(dict(job.input), ctx)
            output = product.output_model.model_validate(output).model_dump(mode="json")
        except LeaseLost:
            steps.take()
            return "lost the lease; stopped without writing, another worker owns the job"
        except JobCancelled:
            steps.take()
            return "cancelled"
        except Exception as exc:
            return self._failed(job, owner, exc, retries, steps)
        with steps.last_events() as pending, self.sessions() as session:
            if store.finish(session, job.id, owner, JobStatus.succeeded, result=output,
                            steps=pending):
                self.bus.announce(job.id, 0)
                return "succeeded"
            state = store.lease_state(session, job.id)
        if state is not None and state[0] == JobStatus.cancelled:
            return "cancelled"
        return "lost the lease before finishing; another worker owns the job"

    def _failed(self, job: Job, owner: str, exc: Exception, retries: int,
                steps: StepWriter) -> str:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, SoftTimeLimitExceeded):
            body = error_detail(
                "time_limit", f"the job ran over {self.settings.job_soft_time_limit_s:g}s")
        else:
            retry = is_transient(exc) and retries < self.settings.job_max_retries
            if retry and self._requeue(job, owner, exc, retries, steps):
                raise Transient(str(exc), job.id) from exc
            if not isinstance(exc, ModelyardError | ValidationError):
                log.exception("job %s failed", job.id)
            body = job_error(exc)
        with steps.last_events() as pending, self.sessions() as session:
            store.finish(session, job.id, owner, JobStatus.failed, error=body, steps=pending)
        self.bus.announce(job.id, 0)
        return "failed"

    def _requeue(self, job: Job, owner: str, exc: Exception, retries: int,
                 steps: StepWriter) -> bool:
        """Give the job back for a retry; True when a retry will find it.

        When the database itself is away, the requeue cannot be written: the lease then lapses
        and the reconciler hands the job out again, so it is still retried, not failed.
        """
        pending = steps.take()
        try:
            with self.sessions() as session:
                if pending and store.add_held_step_events(session, job.id, owner,
                                                          pending) is None:
                    return False
                if not store.requeue(session, job.id, owner):
                    return False
                self.bus.emit(session, job.id, "status", {
                    "status": JobStatus.queued.value,
                    "retry": retries + 1, "reason": job_error(exc)["message"],
                })
                return True
        except Exception as again:
            if not is_transient(again):
                raise
            log.warning("job %s: could not requeue (%s); its lease will lapse", job.id, again)
            return True

    def _context(self, job: Job, product: ProductLike, steps: StepWriter) -> JobContext:
        ctx = JobContext(
            job_id=job.id, team_id=job.team_id, options=RoutingOptions.parse(job.options),
            settings=self.settings, cascade=self.cascade, steps=tuple(product.steps),
        )
        ctx.progress = lambda event: self._progress(ctx, event, steps)
        return ctx

    def _progress(self, ctx: JobContext, event: dict[str, Any], steps: StepWriter) -> None:
        """Store and announce a product event; stop the graph if the job was cancelled.

        The writer checks the lease against the row itself (a frozen process's lease keeper
        has not noticed yet that the lease lapsed): a worker that lost it stops here.  Events
        close together share a commit (``step_writer``).
        """
        data = {k: v for k, v in event.items() if k != "type"}
        progress = None
        if event.get("type") == "node_finished" and ctx.steps:
            ctx.finished.add(str(event.get("node")))
            progress = min(len(ctx.finished & set(ctx.steps)) / len(ctx.steps), 0.99)
        stopped = steps.add(StepEvent(str(event.get("type", "event")), data, progress))
        if stopped is Stop.cancelled:
            raise JobCancelled(ctx.job_id)
        if stopped is Stop.lost:
            raise LeaseLost(ctx.job_id)
