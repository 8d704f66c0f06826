"""A job's event log (numbered 1, 2, ... per job) and its progress, as the worker writes them."""

from __future__ import annotations

from typing import Any

from modelyard_registry.catalog import utcnow
from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ...models import JobEvent
from .tables import EVENTS, JOBS

# One statement built once: the next number is a subquery of the INSERT, which returns it (the
# ORM's read-then-add-then-flush cost more than the database's work on short jobs, #15).
_INSERT_EVENT = (
    insert(EVENTS)
    .values(
        job_id=bindparam("job_id"), type=bindparam("type"), data=bindparam("data"),
        created_at=bindparam("created_at"),
        seq=select(func.coalesce(func.max(EVENTS.c.seq), 0) + 1)
        .where(EVENTS.c.job_id == bindparam("job_id"))
        .scalar_subquery(),
    )
    .returning(EVENTS.c.seq)
)


def stage_event(session: Session, job_id: str, type_: str, data: dict[str, Any]) -> JobEvent:
    """Add the job's next event to the session's transaction (the caller commits).

    The returned event is not attached to the session: it tells the number the row got.
    """
    created = utcnow()
    seq = session.execute(_INSERT_EVENT, {"job_id": job_id, "type": type_, "data": data,
                                          "created_at": created}).scalar_one()
    return JobEvent(job_id=job_id, seq=int(seq), type=type_, data=data, created_at=created)


def add_event(session: Session, job_id: str, type_: str, data: dict[str, Any]) -> JobEvent:
    """Append an event with the next number (retried if a concurrent writer took it)."""
    return add_step_event(session, job_id, type_, data, None)


def add_step_event(
    session: Session, job_id: str, type_: str, data: dict[str, Any], progress: float | None
) -> JobEvent:
    """Append a product's event and, with ``progress``, raise the job's progress: one commit."""
    for _ in range(5):
        event = stage_event(session, job_id, type_, data)
        if progress is not None:
            session.execute(_RAISE_PROGRESS, _progress_params(job_id, progress))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return event
    raise RuntimeError(f"could not append an event to job {job_id}")


_RAISE_PROGRESS = (update(JOBS)
                   .where(JOBS.c.id == bindparam("job"), JOBS.c.progress < bindparam("below"))
                   .values(progress=bindparam("to", type_=JOBS.c.progress.type)))


def set_progress(session: Session, job_id: str, progress: float) -> None:
    """Raise the job's progress, never lower it.

    A resumed job counts the nodes it finishes from zero again; a conditional update keeps the
    progress it had reached before its worker died.
    """
    session.execute(_RAISE_PROGRESS, _progress_params(job_id, progress))
    session.commit()


def _progress_params(job_id: str, progress: float) -> dict[str, Any]:
    value = max(0.0, min(progress, 1.0))
    return {"job": job_id, "below": value, "to": value}
