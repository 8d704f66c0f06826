"""Job rows: create (idempotently), read within a team, claim with a lease, finish exactly once.

Every state change that two processes could race on is one conditional ``UPDATE`` (claim, renew,
finish, cancel), so the database decides who won; nothing relies on the broker delivering a
message exactly once.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard_registry.catalog import utcnow
from modelyard_registry.errors import Conflict, InvalidInput, NotFound
from modelyard_registry.group_commit import GroupCommitter
from modelyard_registry.scores import Call
from sqlalchemy import (
    ColumnElement,
    Update,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ..models import TERMINAL, Job, JobEvent, JobStatus, as_utc


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


_INSERT_JOB = insert(Job.__table__)  # type: ignore[attr-defined]
_INSERT_FIRST_EVENT = insert(JobEvent.__table__)  # type: ignore[attr-defined]


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


_EVENTS = JobEvent.__table__  # type: ignore[attr-defined]
# One statement built once: the next number is a subquery of the INSERT, which returns it (the
# ORM's read-then-add-then-flush cost more than the database's work on short jobs, #15).
_INSERT_EVENT = (
    insert(_EVENTS)
    .values(
        job_id=bindparam("job_id"), type=bindparam("type"), data=bindparam("data"),
        created_at=bindparam("created_at"),
        seq=select(func.coalesce(func.max(_EVENTS.c.seq), 0) + 1)
        .where(_EVENTS.c.job_id == bindparam("job_id"))
        .scalar_subquery(),
    )
    .returning(_EVENTS.c.seq)
)


def _stage_event(session: Session, job_id: str, type_: str, data: dict[str, Any]) -> JobEvent:
    """Add the job's next event to the session's transaction (the caller commits).

    The returned event is not attached to the session: it tells the number the row got.
    """
    created = utcnow()
    seq = session.execute(_INSERT_EVENT, {"job_id": job_id, "type": type_, "data": data,
                                          "created_at": created}).scalar_one()
    return JobEvent(job_id=job_id, seq=int(seq), type=type_, data=data, created_at=created)


def _end(session: Session, ending: Update, job_id: str, data: dict[str, Any],
         params: dict[str, Any] | None = None) -> bool:
    """End a job: the conditional UPDATE ``ending`` and its ``status`` event in ONE transaction.

    Committed apart, a reader between the two commits saw a finished job with no terminal event
    (an event stream ended without it), and a worker killed between them lost it for good.
    """
    for _ in range(5):
        if session.execute(ending, params).rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return False
        _stage_event(session, job_id, "status", data)
        try:
            session.commit()
        except IntegrityError:  # a concurrent event took the number: redo both
            session.rollback()
            continue
        return True
    raise RuntimeError(f"could not append an event to job {job_id}")


def add_event(session: Session, job_id: str, type_: str, data: dict[str, Any]) -> JobEvent:
    """Append an event with the next number (retried if a concurrent writer took it)."""
    return add_step_event(session, job_id, type_, data, None)


def add_step_event(
    session: Session, job_id: str, type_: str, data: dict[str, Any], progress: float | None
) -> JobEvent:
    """Append a product's event and, with ``progress``, raise the job's progress: one commit."""
    for _ in range(5):
        event = _stage_event(session, job_id, type_, data)
        if progress is not None:
            session.execute(_RAISE_PROGRESS, _progress_params(job_id, progress))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return event
    raise RuntimeError(f"could not append an event to job {job_id}")


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
        event = None
        if 0 < job.attempts <= max_attempts:
            event = _stage_event(session, job_id, "status",
                                 {"status": JobStatus.running.value, "attempt": job.attempts})
        try:
            session.commit()
        except IntegrityError:  # a concurrent event (a cancel) took the number: redo both
            session.rollback()
            continue
        return job, (event.seq if event is not None else None)
    raise RuntimeError(f"could not append an event to job {job_id}")


# A job's own writes, one statement each built once on the table, the values as parameters: built
# per call through the ORM (statement, cache key, the bulk UPDATE's session synchronisation),
# they cost a worker more CPU than the database's work on short jobs (#15, py-spy).
_JOBS = Job.__table__  # type: ignore[attr-defined]
_RUNNING: ColumnElement[str] = literal_column(f"'{JobStatus.running.value}'")
_CLAIM = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("job"),
        or_(_JOBS.c.status == literal_column(f"'{JobStatus.queued.value}'"),
            and_(_JOBS.c.status == _RUNNING,
                 _JOBS.c.lease_expires_at < bindparam("now", type_=_JOBS.c.started_at.type))),
    )
    .values(
        status=JobStatus.running, lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("expires", type_=_JOBS.c.lease_expires_at.type),
        attempts=_JOBS.c.attempts + 1,
        started_at=func.coalesce(_JOBS.c.started_at,
                                 bindparam("now", type_=_JOBS.c.started_at.type)),
    )
    .returning(*_JOBS.c)
)
_LEASE_STATE = select(_JOBS.c.status, _JOBS.c.lease_owner).where(_JOBS.c.id == bindparam("job"))
_RAISE_PROGRESS = (update(_JOBS)
                   .where(_JOBS.c.id == bindparam("job"), _JOBS.c.progress < bindparam("below"))
                   .values(progress=bindparam("to", type_=_JOBS.c.progress.type)))
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
        "status": status, "finished_at": bindparam("now", type_=_JOBS.c.finished_at.type),
        "lease_owner": None, "lease_expires_at": None, "cost_usd": cost,
        "result": bindparam("result", type_=_JOBS.c.result.type) if with_result else None,
        "error": bindparam("error", type_=_JOBS.c.error.type) if with_error else None,
    }
    if status == JobStatus.succeeded:
        values["progress"] = 1.0
    return (update(_JOBS)
            .where(_JOBS.c.id == bindparam("job"), _JOBS.c.lease_owner == bindparam("owner"),
                   _JOBS.c.status == _RUNNING)
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
) -> bool:
    """Write the outcome once: only the lease holder of a still-running job may."""
    assert status in TERMINAL
    key = (status, result is not None, error is not None)
    ending = _FINISH.get(key)
    if ending is None:
        ending = _FINISH[key] = _finishing(*key)
    params = {"job": job_id, "owner": owner, "now": utcnow(), "result": result, "error": error}
    return _end(session, ending, job_id, {"status": status.value, "error": error}, params)


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
