"""Reads of job rows: a team sees its own jobs only; pages by cursor; a job's calls and events."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from modelyard_registry.errors import InvalidInput, NotFound
from modelyard_registry.scores import Call
from sqlalchemy import and_, bindparam, func, or_
from sqlmodel import Session, col, select

from ...models import Job, JobEvent, JobStatus, as_utc
from .tables import JOBS


def get_job(session: Session, *, team_id: int | None, job_id: str) -> Job:
    """The job, if the team may see it (another team's job is 'not found', not 'forbidden')."""
    job = session.get(Job, job_id)
    if job is None or (team_id is not None and job.team_id != team_id):
        raise NotFound(f"no job {job_id!r}", field="job_id")
    session.refresh(job)
    return job


# ``<microseconds since the epoch, UTC>-<job id>``: every string of this shape is a cursor that
# reads (the API documents the pattern), so a client can only send a bad one by breaking it.
CURSOR_PATTERN = r"^[0-9]{1,16}-[A-Za-z0-9_]{1,32}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(job: Job) -> str:
    created = as_utc(job.created_at)
    assert created is not None
    micros = (created - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{job.id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The page boundary a cursor names: a UTC creation time (exact to the microsecond), an id."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise InvalidInput("invalid cursor: use next_cursor from the previous page",
                           field="cursor")
    micros, job_id = cursor.split("-", 1)
    return _EPOCH + timedelta(microseconds=int(micros)), job_id


def list_jobs(
    session: Session,
    *,
    team_id: int,
    status: JobStatus | None = None,
    product: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[Job], str | None]:
    """Newest first; ``cursor`` continues after the last job of the previous page."""
    query = select(Job).where(Job.team_id == team_id)
    if status is not None:
        query = query.where(Job.status == status)
    if product is not None:
        query = query.where(Job.product == product)
    if cursor is not None:  # an empty one too is a cursor we did not issue
        stamp, last_id = decode_cursor(cursor)
        query = query.where(
            or_(col(Job.created_at) < stamp,
                and_(col(Job.created_at) == stamp, col(Job.id) < last_id))
        )
    query = query.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit + 1)
    rows = list(session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


def job_calls(session: Session, job_id: str) -> list[Call]:
    query = select(Call).where(Call.job_id == job_id).order_by(col(Call.id))
    return list(session.exec(query))


def job_cost(session: Session, job_id: str) -> float:
    total = session.exec(
        select(func.coalesce(func.sum(Call.cost_usd), 0.0)).where(Call.job_id == job_id)
    ).one()
    return float(total)


_LEASE_STATE = select(JOBS.c.status, JOBS.c.lease_owner).where(JOBS.c.id == bindparam("job"))


def lease_state(session: Session, job_id: str) -> tuple[JobStatus, str | None] | None:
    """The job's status and lease owner as the database has them now (None: no such job)."""
    row = session.execute(_LEASE_STATE, {"job": job_id}).first()
    return None if row is None else (JobStatus(row[0]), row[1])


def events_after(session: Session, job_id: str, seq: int) -> list[JobEvent]:
    query = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.seq > seq)
        .order_by(col(JobEvent.seq))
    )
    return list(session.exec(query))
