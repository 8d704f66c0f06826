"""A job's event log (numbered 1, 2, ... per job) and its progress, as the worker writes them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from modelyard_registry.catalog import utcnow
from sqlalchemy import (
    Insert,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .tables import EVENTS, JOBS, RUNNING

# One statement built once: the next number is a subquery of the INSERT, which returns it (the
# ORM's read-then-add-then-flush cost more than the database's work on short jobs, #15).
_NEXT_SEQ = (select(func.coalesce(func.max(EVENTS.c.seq), 0) + 1)
             .where(EVENTS.c.job_id == bindparam("job_id"))
             .scalar_subquery())
_INSERT_EVENT = (
    insert(EVENTS)
    .values(job_id=bindparam("job_id"), type=bindparam("type"), data=bindparam("data"),
            created_at=bindparam("created_at"), seq=_NEXT_SEQ)
    .returning(EVENTS.c.seq)
)
# The same event, written only while the job runs under the caller's lease: the check is the
# INSERT's own ``WHERE``.  A step event was a lease SELECT and then the INSERT: a round trip
# more per event (two of an ``echo`` job's 22 statements on PostgreSQL, #15), and a lease
# could change hands between the two statements.
_INSERT_EVENT_IF_HELD = (
    insert(EVENTS)
    .from_select(
        ["job_id", "type", "data", "created_at", "seq"],
        select(bindparam("job_id", type_=EVENTS.c.job_id.type),
               bindparam("type", type_=EVENTS.c.type.type),
               bindparam("data", type_=EVENTS.c.data.type),
               bindparam("created_at", type_=EVENTS.c.created_at.type),
               _NEXT_SEQ)
        .where(JOBS.c.id == bindparam("job_id"), JOBS.c.status == RUNNING,
               JOBS.c.lease_owner == bindparam("owner")),
    )
    .returning(EVENTS.c.seq)
)


def stage_event(session: Session, job_id: str, type_: str, data: dict[str, Any]) -> int:
    """Add the job's next event to the session's transaction (the caller commits); its number.

    Only the number: building a ``JobEvent`` model per event cost a tenth of a worker's time
    holding the GIL on ``echo`` jobs (py-spy, #15), and no caller read more than ``seq``.
    """
    return int(session.execute(_INSERT_EVENT, {"job_id": job_id, "type": type_, "data": data,
                                               "created_at": utcnow()}).scalar_one())


@dataclass(frozen=True)
class StepEvent:
    """A product's event not written yet, and the progress it makes (None: none)."""

    type: str
    data: dict[str, Any]
    progress: float | None = None


def stage_events(session: Session, job_id: str,
                 events: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Add several events, numbered in order, to the session's transaction in ONE statement.

    A job's end writes its last step events and its status event together (``lease._end``): one
    INSERT of them all, not one round trip each (three of an ``echo`` job's statements, #15).
    Nothing is returned: ``stage_event`` is the one whose caller needs the number.
    The numbers are the job's highest so far plus 1, 2, ..., read once by the statement itself.
    """
    for start in range(0, len(events), _MOST_PER_INSERT):
        batch = events[start:start + _MOST_PER_INSERT]
        params: dict[str, Any] = {"job_id": job_id, "created_at": utcnow()}
        for k, (type_, data) in enumerate(batch):
            params[f"type_{k}"], params[f"data_{k}"] = type_, data
        session.execute(_insert_events(len(batch)), params)


_MOST_PER_INSERT = 100  # SQLite takes at most 500 SELECTs in one compound statement


@lru_cache(maxsize=16)
def _insert_events(n: int) -> Insert:
    """The INSERT of ``n`` events: ``(highest number) x (1..n, type_k, data_k)``."""
    rows = union_all(*(
        select(literal_column(str(k + 1)).label("k"),
               bindparam(f"type_{k}", type_=EVENTS.c.type.type).label("type"),
               bindparam(f"data_{k}", type_=EVENTS.c.data.type).label("data"))
        for k in range(n)
    )).subquery("v")
    base = (select(func.coalesce(func.max(EVENTS.c.seq), 0).label("n"))
            .where(EVENTS.c.job_id == bindparam("job_id")).subquery("base"))
    return insert(EVENTS).from_select(
        ["job_id", "seq", "type", "data", "created_at"],
        select(bindparam("job_id", type_=EVENTS.c.job_id.type), base.c.n + rows.c.k,
               rows.c.type, rows.c.data,
               bindparam("created_at", type_=EVENTS.c.created_at.type))
        .select_from(base.join(rows, true()))
        .order_by(rows.c.k),
    )


def add_held_step_events(session: Session, job_id: str, owner: str,
                         events: Sequence[StepEvent]) -> int | None:
    """A product's events and their progress in one commit under ``owner``'s lease; last number.

    None, and nothing written, when the job no longer runs under that lease: a job cancelled
    or handed to another worker meanwhile takes no more of this worker's events
    (``lease_state`` then tells which of the two happened).  Each INSERT carries the lease
    check, so a lease lost between two of them (a cancel commits in between) rolls all back.
    """
    assert events

    def stage() -> int | None:
        last: int | None = None
        for step in events:
            last = _stage_if_held(session, job_id, owner, step.type, step.data)
            if last is None:
                return None
        stage_progress(session, job_id, events)
        return last

    return _committed(session, job_id, stage)


def stage_progress(session: Session, job_id: str, events: Sequence[StepEvent]) -> None:
    """Raise the job's progress to the highest the events make, in the caller's transaction."""
    made = [step.progress for step in events if step.progress is not None]
    if made:
        session.execute(_RAISE_PROGRESS, _progress_params(job_id, max(made)))


def add_event(session: Session, job_id: str, type_: str, data: dict[str, Any]) -> int:
    """Append an event with the next number (retried if a concurrent writer took it); its number."""
    seq = _committed(session, job_id, lambda: stage_event(session, job_id, type_, data))
    assert seq is not None  # nothing to refuse it
    return seq


def _committed(session: Session, job_id: str, stage: Callable[[], int | None]) -> int | None:
    """``stage()`` committed, redone when a concurrent writer took an event's number.

    None, with nothing written, when ``stage`` refuses (a lease no longer held).
    """
    for _ in range(5):
        try:  # PostgreSQL refuses a taken number at the INSERT, SQLite at the latest at COMMIT
            seq = stage()
            if seq is None:
                session.rollback()
                return None
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return seq
    raise RuntimeError(f"could not append an event to job {job_id}")


def _stage_if_held(session: Session, job_id: str, owner: str, type_: str,
                   data: dict[str, Any]) -> int | None:
    seq = session.execute(_INSERT_EVENT_IF_HELD, {
        "job_id": job_id, "owner": owner, "type": type_, "data": data, "created_at": utcnow(),
    }).scalar_one_or_none()
    return None if seq is None else int(seq)


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
