"""A job's submission: one queued row and its first event, the same key + body only once."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from modelyard_registry.errors import Conflict, InvalidInput
from modelyard_registry.group_commit import GroupCommitter
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ...models import Job, JobEvent, JobStatus
from .tables import EVENTS, JOBS


def request_hash(product: str, input_data: dict[str, Any], options: dict[str, Any]) -> str:
    body = json.dumps([product, input_data, options], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def create_job(
    session: Session,
    *,
    team_id: int,
    product: str,
    input_data: dict[str, Any],
    options: dict[str, Any],
    idempotency_key: str | None = None,
    committer: GroupCommitter | None = None,
) -> tuple[Job, bool]:
    """Insert a queued job; with an idempotency key, the same key + body returns the same job.

    With ``committer`` the row goes in through group commit: concurrent submissions share one
    transaction (one commit, one WAL flush on PostgreSQL) instead of queueing for the database's
    write lock one by one (#15); it returns once the row is committed all the same.
    """
    digest = request_hash(product, input_data, options)
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 255:
            raise InvalidInput("Idempotency-Key must be 1-255 characters", field="Idempotency-Key")
        existing = _by_idempotency_key(session, team_id, idempotency_key)
        if existing is not None:
            return _same_body(existing, digest), False
    job = Job(
        id=uuid.uuid4().hex, team_id=team_id, product=product, input=input_data,
        options=options, idempotency_key=idempotency_key, request_hash=digest,
    )
    # The row and its first event in one commit (a new job has no events: its number is 1).
    # Every column is set here, so nothing needs reading back.
    event = JobEvent(job_id=job.id, seq=1, type="status", data={"status": JobStatus.queued.value})
    try:
        if committer is None:
            session.add(job)
            session.add(event)
            session.commit()
        else:
            committer.write(_inserts(job, event))
    except IntegrityError:  # a concurrent request with the same key won the race
        session.rollback()
        assert idempotency_key is not None
        existing = _by_idempotency_key(session, team_id, idempotency_key)
        if existing is None:
            raise
        return _same_body(existing, digest), False
    return job, True


_INSERT_JOB = insert(JOBS)
_INSERT_FIRST_EVENT = insert(EVENTS)


def _inserts(job: Job, event: JobEvent) -> Callable[[Session], None]:
    """Plain INSERTs of a new job and its first event (for a session that is not the caller's).

    Table statements built once, the row's values as parameters: an ORM insert with the values
    in the statement cost more in SQLAlchemy's cache-key work than the insert itself.
    """
    rows = [(_INSERT_JOB, _values(job)), (_INSERT_FIRST_EVENT, _values(event))]

    def write(session: Session) -> None:
        connection = session.connection()
        for statement, values in rows:
            connection.execute(statement, values)

    return write


def _values(row: Job | JobEvent) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in type(row).__table__.columns  # type: ignore[union-attr]
            if getattr(row, c.name) is not None}


def _by_idempotency_key(session: Session, team_id: int, key: str) -> Job | None:
    query = select(Job).where(Job.team_id == team_id, Job.idempotency_key == key)
    return session.exec(query).first()


def _same_body(job: Job, digest: str) -> Job:
    if job.request_hash != digest:
        raise Conflict(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
        )
    return job
