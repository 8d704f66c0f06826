"""Who runs a job: claim under a lease, renew it, finish once, requeue, cancel, sweep the stale.

Every state change that two processes could race on is one conditional ``UPDATE``, so the
database decides who won.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from modelyard_registry.catalog import utcnow
from modelyard_registry.scores import Call
from sqlalchemy import Update, and_, bindparam, func, literal_column, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ...models import TERMINAL, Job, JobStatus
from .events import StepEvent, stage_event, stage_events, stage_progress
from .read import job_cost
from .tables import JOBS, RUNNING


def _end(session: Session, ending: Update, job_id: str, data: dict[str, Any],
         params: dict[str, Any] | None = None, steps: Sequence[StepEvent] = ()) -> bool:
    """End a job: the conditional UPDATE ``ending`` and its ``status`` event in ONE transaction.

    Committed apart, a reader between the two commits saw a finished job with no terminal event
    (an event stream ended without it), and a worker killed between them lost it for good.
    ``steps``, the product's events not written yet, go in before the status event: the
    UPDATE's own condition is their lease check.
    """
    for _ in range(5):
        try:  # a concurrent event took the number (at the INSERT or the COMMIT): redo both
            if session.execute(ending, params).rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                return False
            if data["status"] != JobStatus.succeeded.value:  # a success's UPDATE set it to 1.0
                stage_progress(session, job_id, steps)
            stage_events(session, job_id, [*((s.type, s.data) for s in steps), ("status", data)])
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return True
    raise RuntimeError(f"could not append an event to job {job_id}")


def cancel_job(session: Session, job: Job) -> bool:
    """Cancel a queued or running job; False when it had already ended."""
    ending = (
        update(Job)
        .where(col(Job.id) == job.id, col(Job.status).in_([JobStatus.queued, JobStatus.running]))
        .values(status=JobStatus.cancelled, finished_at=utcnow(), lease_owner=None,
                cost_usd=job_cost(session, job.id))
    )
    return _end(session, ending, job.id, {"status": JobStatus.cancelled.value})


def claim(session: Session, job_id: str, owner: str, lease_s: float) -> Job | None:
    """Take the job if it is queued, or running under a lease nobody renewed; None otherwise."""
    claimed = claim_and_start(session, job_id, owner, lease_s, max_attempts=0)
    return None if claimed is None else claimed[0]


def claim_and_start(
    session: Session, job_id: str, owner: str, lease_s: float, *, max_attempts: int
) -> tuple[Job, int | None] | None:
    """``claim``, plus the job's ``running`` event in the same transaction; ``(job, its seq)``.

    The event is stored only while the claim is within ``max_attempts`` (0: never); beyond it the
    worker gives the job up instead.  The UPDATE returns the row, so nothing is read back, and
    a reader never sees a running job without its event.
    """
    for _ in range(5):
        now = utcnow()
        row = session.execute(_CLAIM, {
            "job": job_id, "now": now, "owner": owner,
            "expires": now + timedelta(seconds=lease_s)}).first()
        if row is None:
            session.rollback()
            return None
        job = Job(**row._mapping)
        seq = None
        try:  # a concurrent event (a cancel) took the number: redo both
            if 0 < job.attempts <= max_attempts:
                seq = stage_event(session, job_id, "status",
                                  {"status": JobStatus.running.value, "attempt": job.attempts})
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return job, seq
    raise RuntimeError(f"could not append an event to job {job_id}")


_CLAIM = (
    update(JOBS)
    .where(
        JOBS.c.id == bindparam("job"),
        or_(JOBS.c.status == literal_column(f"'{JobStatus.queued.value}'"),
            and_(JOBS.c.status == RUNNING,
                 JOBS.c.lease_expires_at < bindparam("now", type_=JOBS.c.started_at.type))),
    )
    .values(
        status=JobStatus.running, lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("expires", type_=JOBS.c.lease_expires_at.type),
        attempts=JOBS.c.attempts + 1,
        started_at=func.coalesce(JOBS.c.started_at,
                                 bindparam("now", type_=JOBS.c.started_at.type)),
    )
    .returning(*JOBS.c)
)
_FINISH: dict[tuple[JobStatus, bool, bool], Update] = {}


def _finishing(status: JobStatus, with_result: bool, with_error: bool) -> Update:
    """The conditional UPDATE that ends a job with ``status``; the job's cost summed inside it.

    A missing result or error is a literal NULL: a NULL parameter of a JSON column is stored as
    JSON ``null``.
    """
    calls = Call.__table__  # type: ignore[attr-defined]
    cost = (select(func.coalesce(func.sum(calls.c.cost_usd), 0.0))
            .where(calls.c.job_id == bindparam("job")).scalar_subquery())
    values: dict[str, Any] = {
        "status": status, "finished_at": bindparam("now", type_=JOBS.c.finished_at.type),
        "lease_owner": None, "lease_expires_at": None, "cost_usd": cost,
        "result": bindparam("result", type_=JOBS.c.result.type) if with_result else None,
        "error": bindparam("error", type_=JOBS.c.error.type) if with_error else None,
    }
    if status == JobStatus.succeeded:
        values["progress"] = 1.0
    return (update(JOBS)
            .where(JOBS.c.id == bindparam("job"), JOBS.c.lease_owner == bindparam("owner"),
                   JOBS.c.status == RUNNING)
            .values(**values))


def renew(session: Session, job_id: str, owner: str, lease_s: float) -> bool:
    result = session.execute(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.lease_owner) == owner,
               col(Job.status) == JobStatus.running)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def finish(
    session: Session,
    job_id: str,
    owner: str,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    steps: Sequence[StepEvent] = (),
) -> bool:
    """Write the outcome once: only the lease holder of a still-running job may.

    ``steps`` are the product's last events, written in the same transaction (``StepWriter``).
    """
    assert status in TERMINAL
    key = (status, result is not None, error is not None)
    ending = _FINISH.get(key)
    if ending is None:
        ending = _FINISH[key] = _finishing(*key)
    params = {"job": job_id, "owner": owner, "now": utcnow(), "result": result, "error": error}
    return _end(session, ending, job_id, {"status": status.value, "error": error}, params,
                steps)


def requeue(session: Session, job_id: str, owner: str) -> bool:
    """Give a running job back to the queue (transient error, retry with backoff)."""
    result = session.execute(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.lease_owner) == owner,
               col(Job.status) == JobStatus.running)
        .values(status=JobStatus.queued, lease_owner=None, lease_expires_at=None,
                enqueued_at=utcnow())
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def take_stale(session: Session, *, requeue_after_s: float) -> list[str]:
    """Jobs no worker is working on: queued too long, or running with an expired lease.

    Each one's ``enqueued_at`` is bumped in the same conditional update, so two reconcilers
    running at once do not both re-enqueue it (and a duplicate would be harmless anyway: only
    one worker can claim).
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=requeue_after_s)
    candidates = list(session.exec(
        select(Job.id).where(
            or_(
                and_(col(Job.status) == JobStatus.queued, col(Job.enqueued_at) < cutoff),
                and_(col(Job.status) == JobStatus.running, col(Job.lease_expires_at) < now),
            )
        ).limit(500)
    ))
    taken = []
    for job_id in candidates:
        result = session.execute(
            update(Job)
            .where(col(Job.id) == job_id, or_(
                and_(col(Job.status) == JobStatus.queued, col(Job.enqueued_at) < cutoff),
                and_(col(Job.status) == JobStatus.running, col(Job.lease_expires_at) < now),
            ))
            .values(enqueued_at=now)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            taken.append(job_id)
    session.commit()
    return taken
