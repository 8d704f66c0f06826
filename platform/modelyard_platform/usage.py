"""Tokens and cost per team, grouped by product, model or day; monthly budgets.

Grouping happens in Python over the team's ``calls`` rows for the period, so it reads the same
on SQLite and PostgreSQL (their date functions differ).  A budget counts this month's spend plus
the reservations of calls in flight (``budget``), so it holds under concurrent requests.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from modelyard_registry.catalog import utcnow
from modelyard_registry.errors import InvalidInput
from modelyard_registry.scores import Call
from sqlalchemy import func
from sqlmodel import Session, col, select

from .budget_cache import BudgetFreeTeams
from .errors import OverBudget
from .models import BudgetReservation, Job, Team, as_utc

GroupBy = Literal["product", "model", "day"]


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spent_since(session: Session, team_id: int, since: datetime) -> float:
    total = session.exec(
        select(func.coalesce(func.sum(Call.cost_usd), 0.0))
        .where(Call.team_id == team_id, col(Call.created_at) >= since)
    ).one()
    return float(total)


def committed(session: Session, team_id: int, now: datetime) -> tuple[float, float]:
    """The month's spend and the live reservations of calls in flight, in one statement.

    One statement reads both from one snapshot: a call settling meanwhile (its usage row in,
    its reservation out, in one transaction) is counted exactly once.
    """
    spent = (select(func.coalesce(func.sum(Call.cost_usd), 0.0))
             .where(Call.team_id == team_id, col(Call.created_at) >= month_start(now))
             .scalar_subquery())
    held = (select(func.coalesce(func.sum(BudgetReservation.amount_usd), 0.0))
            .where(BudgetReservation.team_id == team_id,
                   col(BudgetReservation.expires_at) > now)
            .scalar_subquery())
    row = session.exec(select(spent, held)).one()
    return float(row[0]), float(row[1])


def refuse_if_over(team: Team, spent: float, held: float) -> None:
    """``OverBudget`` once spend plus reservations reached the team's budget."""
    if team.budget_usd is not None and spent + held >= team.budget_usd:
        in_flight = f" (+${held:.4f} reserved by calls in flight)" if held else ""
        raise OverBudget(
            f"team {team.name!r} is over its monthly budget: spent ${spent:.4f}{in_flight} of "
            f"${team.budget_usd:.4f}; raise it with `yard teams budget {team.name} USD`"
        )


def check_budget(session: Session, team_id: int, free: BudgetFreeTeams | None = None) -> None:
    """Refuse new work once this month's spend plus calls in flight reached the team's budget.

    A check, not a reservation: each model call reserves its own maximum when it starts
    (``budget.TeamBudgets``), so a job accepted here can still stop at a call the budget no
    longer covers.
    """
    generation = free.generation if free is not None else 0
    team = session.get(Team, team_id)
    if team is None or team.budget_usd is None:
        if team is not None and free is not None:
            free.remember(team_id, generation)  # ``free`` then skips this read next time
        return
    refuse_if_over(team, *committed(session, team_id, utcnow()))


def parse_period(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    def parse(value: str, name: str) -> datetime:
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"{name}: not an ISO date or datetime: {value!r}", field=name
            ) from None
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)

    stop = parse(end, "to") if end else utcnow()
    begin = parse(start, "from") if start else stop - timedelta(days=30)
    if begin > stop:
        raise InvalidInput("from must not be after to", field="from")
    return begin, stop


def usage(
    session: Session, *, team_id: int, start: datetime, end: datetime, group_by: GroupBy
) -> dict[str, Any]:
    rows = session.exec(
        select(Call, Job.product)
        .join(Job, col(Job.id) == col(Call.job_id), isouter=True)
        .where(Call.team_id == team_id, col(Call.created_at) >= start,
               col(Call.created_at) <= end)
    ).all()
    groups: dict[str, dict[str, float]] = defaultdict(
        lambda: {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    )
    total = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    for call, product in rows:
        if group_by == "model":
            key = call.model_name
        elif group_by == "day":
            stamp = as_utc(call.created_at)
            key = stamp.date().isoformat() if stamp else "unknown"
        else:
            key = product or "chat"
        for acc in (groups[key], total):
            acc["calls"] += 1
            acc["prompt_tokens"] += call.prompt_tokens
            acc["completion_tokens"] += call.completion_tokens
            acc["cost_usd"] += call.cost_usd
    return {
        "from": start.isoformat(), "to": end.isoformat(), "group_by": group_by,
        "total": total,
        "groups": [{"key": k, **v} for k, v in sorted(groups.items())],
    }
