"""Fair share of the workers between teams, and the per-team cap on unfinished jobs.

The broker stays one FIFO queue, but a message is a *turn*, not an order: a fresh job's message
lets a worker run the queued job of the team with the fewest jobs running now, then of the team
served least recently (``fair_candidates``), not necessarily the job the message names. So one
team's backlog of thirty jobs no longer delays another team's single job behind all thirty: it
starts as soon as a worker is free. Each message still leads to at most one claim and every
queued job keeps at least one message, so nothing is lost or run twice (the claim is still the
conditional UPDATE in ``store.claim``). Why not per-team broker queues: Celery consumes its
queues in a fixed order, and a dispatcher would be one more process to supervise; the database
already knows who runs what.

Retries (a job given back after a transient error) and stale jobs (running under an expired
lease) are claimed by their own id, so backoff and recovery behave as before.
"""

from __future__ import annotations

from datetime import timedelta

from modelyard_registry.catalog import utcnow
from sqlalchemy import func
from sqlmodel import Session, col, select

from ..errors import TooManyJobs
from ..models import Job, JobStatus

UNFINISHED = (JobStatus.queued, JobStatus.running)
SERVED_WINDOW = timedelta(days=1)  # bounds the scan for "last served" to recent, indexed rows


def check_team_backlog(
    session: Session, team_id: int, limit: int, idempotency_key: str | None = None
) -> None:
    """Refuse a new job when the team has ``limit`` jobs queued or running (0: no limit).

    A replay of an already accepted request (same Idempotency-Key) is not a new job: it passes.
    """
    if limit <= 0:
        return
    if idempotency_key is not None and session.exec(
        select(Job.id).where(Job.team_id == team_id, Job.idempotency_key == idempotency_key)
    ).first() is not None:
        return
    unfinished = session.exec(
        select(func.count()).select_from(Job)
        .where(Job.team_id == team_id, col(Job.status).in_(UNFINISHED))
    ).one()
    if int(unfinished) >= limit:
        raise TooManyJobs(
            f"your team has {int(unfinished)} jobs queued or running, the most allowed "
            f"({limit}); wait for some to finish or cancel some"
        )


def fair_candidates(session: Session, limit: int = 5) -> list[str]:
    """Fresh queued jobs, fairest first: round-robin between the teams that wait.

    Order: the team with the fewest jobs running, then the team served least recently (latest
    start of its jobs created in the last day; never: first), then the oldest job. The second key
    is what makes one worker alternate between teams: when it asks, the team whose job just
    finished has nothing running either. Only jobs never claimed (``attempts == 0``): a job
    waiting out a retry backoff is run by its own delayed message, not earlier.
    """
    fresh = (col(Job.status) == JobStatus.queued, col(Job.attempts) == 0)
    waiting = list(session.exec(select(Job.team_id).where(*fresh).distinct().limit(2)))
    if len(waiting) < 2:  # no team to rank (the ranking reads a day of jobs): oldest first
        return list(session.exec(
            select(Job.id).where(*fresh).order_by(col(Job.created_at), col(Job.id)).limit(limit)
        )) if waiting else []
    running = (
        select(col(Job.team_id).label("team_id"), func.count().label("n"))
        .where(Job.status == JobStatus.running)
        .group_by(col(Job.team_id))
        .subquery()
    )
    served = (
        select(col(Job.team_id).label("team_id"), func.max(Job.started_at).label("at"))
        .where(col(Job.created_at) >= utcnow() - SERVED_WINDOW,
               col(Job.started_at).is_not(None))
        .group_by(col(Job.team_id))
        .subquery()
    )
    query = (
        select(Job.id)
        .outerjoin(running, running.c.team_id == Job.team_id)
        .outerjoin(served, served.c.team_id == Job.team_id)
        .where(Job.status == JobStatus.queued, Job.attempts == 0)
        .order_by(func.coalesce(running.c.n, 0), served.c.at.is_not(None), served.c.at,
                  col(Job.created_at), col(Job.id))
        .limit(limit)
    )
    return list(session.exec(query))


def own_turn(session: Session, job_id: str) -> bool:
    """True when a message for this job must claim it by id (a retry or a stale lease)."""
    row = session.exec(select(Job.status, Job.attempts).where(col(Job.id) == job_id)).first()
    if row is None:
        return False
    return row[0] == JobStatus.running or row[1] > 0
