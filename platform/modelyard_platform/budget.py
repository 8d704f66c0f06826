"""Budget reservations: a team's calls in flight hold their maximum cost until they settle.

The cascade asks ``TeamBudgets.reserve`` before a call's first attempt (``admission``).  For a
team with a budget, admission takes the team's row lock (an ``UPDATE`` of its row: a row lock on
PostgreSQL, the write lock on SQLite, so the same code serialises admissions on both), reads this
month's spend plus the live reservations in one statement, refuses when they reached the budget,
and stores a ``BudgetReservation`` of the call's maximum.  The reservation is deleted in the
transaction that writes the call's last usage row, so the team's spend plus its reservations
never counts a call twice or not at all.  Admitted while spend + reservations < budget, each
call can add at most its own maximum: concurrent requests overshoot by at most one request's
maximum, however many run at once.

Why a table, not a counter in Redis or a ``reserved_usd`` column: the usage rows are the truth
and live in the database, so settling in their transaction needs no second system and no
reconciliation; a row per call can expire on its own (a process killed mid-call leaves a row
that stops counting at ``expires_at`` and is deleted by the team's next admission), where a
counter would leak forever.  A team without a budget costs one primary-key read and no write,
and in the API not even that once read (``budget_cache``).

A job call (workers) is always reserved, budget or not: a worker killed or frozen in the middle
of a call leaves its reservation, and when the job's next worker makes the same call (job calls
have fixed request ids) it finds it and bills it as an ``error`` row at the reserved maximum (what
the lost attempt really used is unknown: this is its upper bound), so a killed attempt is never
free and the job's cost is still the sum of its calls.

A reservation's commit need not be durable: a crash that loses it also ends the calls it
covered, so on PostgreSQL it skips the WAL flush (``synchronous_commit = off``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

from modelyard_registry.catalog import utcnow
from modelyard_registry.routing.admission import Hold, Settle
from modelyard_registry.scores import Call
from sqlalchemy import delete, text, update
from sqlmodel import Session, col, select

from .budget_cache import BudgetFreeTeams
from .models import BudgetReservation, Team
from .usage import committed, refuse_if_over

SessionFactory = Callable[[], AbstractContextManager[Session]]

RESERVATION_TTL_S = 3600.0
"""How long a reservation counts without being settled or renewed (the default of
``Settings.budget_reservation_ttl_s``): longer than a non-streamed call should run, short enough
that a crash's leftovers lapse.  A stream renews its reservation while it lives (``Hold.keep``)."""


def reserve(session: Session, *, team_id: int, request_id: str, job_id: str | None,
            amount_usd: float, node: str | None = None, model: str = "",
            ttl_s: float = RESERVATION_TTL_S) -> int | None:
    """Admit a call of ``team_id`` and hold ``amount_usd`` for it; returns the reservation id.

    None when nothing was reserved: a team without a budget, for a call outside a job.
    ``OverBudget`` when the team's spend plus the reservations in flight reached its budget.
    Commits.
    """
    team = session.get(Team, team_id)
    budgeted = team is not None and team.budget_usd is not None
    if not budgeted and job_id is None:
        session.rollback()
        return None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))
    now = utcnow()
    if team is not None and budgeted:
        # The lock: admissions of one team run one at a time from here to the commit.
        session.execute(update(Team).where(col(Team.id) == team_id)
                        .values(budget_usd=Team.budget_usd))
        session.execute(delete(BudgetReservation).where(
            col(BudgetReservation.team_id) == team_id, col(BudgetReservation.expires_at) <= now))
    if job_id is not None:
        bill_lost_attempts(session, team_id=team_id, request_id=request_id, job_id=job_id)
    if team is not None and budgeted:
        spent, held = committed(session, team_id, now)
        try:
            refuse_if_over(team, spent, held)
        except Exception:
            session.commit()  # lost attempts stay billed
            raise
    row = BudgetReservation(team_id=team_id, request_id=request_id[:255], job_id=job_id,
                            node=node, model_name=model[:255], amount_usd=max(amount_usd, 0.0),
                            created_at=now, expires_at=now + timedelta(seconds=ttl_s))
    session.add(row)
    session.commit()
    assert row.id is not None
    return row.id


def bill_lost_attempts(session: Session, *, team_id: int, request_id: str, job_id: str) -> None:
    """Earlier attempts at this job call that never settled: their worker died or froze in them.

    Only the lease holder makes a job's calls, so a reservation left under this request id is a
    previous holder's.  Each becomes an ``error`` usage row at its reserved maximum.
    """
    lost = session.exec(select(BudgetReservation).where(
        col(BudgetReservation.request_id) == request_id,
        col(BudgetReservation.job_id) == job_id)).all()
    for row in lost:
        session.add(Call(
            request_id=request_id, job_id=job_id, team_id=team_id, node=row.node, attempt=0,
            model_name=row.model_name or "unknown", cost_usd=row.amount_usd, outcome="error",
            reason="attempt lost with its worker (killed or frozen mid-call): billed its "
                   "reserved maximum, what it used is unknown",
            created_at=row.created_at,
        ))
        session.delete(row)


def release(reservation_id: int) -> Settle:
    """The write that settles a reservation (run beside the call's last usage row)."""
    def settle(session: Session) -> None:
        session.execute(delete(BudgetReservation)
                        .where(col(BudgetReservation.id) == reservation_id))
    return settle


def extend(session: Session, reservation_id: int, ttl_s: float) -> None:
    """Push a live call's reservation's expiry out to ``ttl_s`` from now.  Commits."""
    session.execute(update(BudgetReservation).where(col(BudgetReservation.id) == reservation_id)
                    .values(expires_at=utcnow() + timedelta(seconds=ttl_s)))
    session.commit()


class TeamBudgets:
    """The platform's ``BudgetGuard``: reservations in the database the usage rows live in."""

    def __init__(self, sessions: SessionFactory, ttl_s: float = RESERVATION_TTL_S,
                 free: BudgetFreeTeams | None = None) -> None:
        """``free`` (the API's) remembers teams without a budget: their calls read nothing."""
        self.sessions = sessions
        self.ttl_s = ttl_s
        self.free = free

    def reserve(self, *, team_id: int, request_id: str, job_id: str | None, node: str | None,
                model: str, max_cost_usd: float) -> Hold | None:
        free = self.free if job_id is None else None  # a job call is always reserved
        if free is not None and team_id in free:
            return None
        generation = free.generation if free is not None else 0
        with self.sessions() as session:
            found = reserve(session, team_id=team_id, request_id=request_id, job_id=job_id,
                            amount_usd=max_cost_usd, node=node, model=model, ttl_s=self.ttl_s)
        if found is None and free is not None:
            free.remember(team_id, generation)
        return None if found is None else Hold(release(found), lambda: self.extend(found),
                                               self.ttl_s)

    def extend(self, reservation_id: int) -> None:
        """Renew a live call's reservation (``Hold.keep`` calls it, off the event loop)."""
        with self.sessions() as session:
            extend(session, reservation_id, self.ttl_s)


__all__ = ["RESERVATION_TTL_S", "TeamBudgets", "bill_lost_attempts", "extend", "release",
           "reserve"]
