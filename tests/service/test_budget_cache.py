"""A team without a budget is admitted from memory, and giving it one takes effect at once.

The API remembers the teams it found without a budget (``budget_cache``), so their calls skip
the team row read.  What a user relies on: a budget set in this process refuses the very next
call, a budget set from another process (``yard teams budget``, plain SQL) refuses calls within
the watcher's interval, and a job call is reserved whatever is remembered.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from modelyard_platform.auth import set_budget
from modelyard_platform.budget import TeamBudgets
from modelyard_platform.budget_cache import BudgetFreeTeams
from modelyard_platform.errors import OverBudget
from modelyard_platform.models import BudgetReservation, Team
from modelyard_registry.db import get_engine, session_scope
from modelyard_registry.watch import ChangeWatcher
from sqlalchemy import text
from sqlmodel import select


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'budget.db'}"
    return str(request.getfixturevalue("pg_url"))


def new_team(url: str) -> int:
    get_engine(url)  # migrated
    with session_scope(url) as session:
        team = Team(name="free")
        session.add(team)
        session.commit()
        assert team.id is not None
        return team.id


def admit(budgets: TeamBudgets, team_id: int, request_id: str, job_id: str | None = None
          ) -> object:
    return budgets.reserve(team_id=team_id, request_id=request_id, job_id=job_id, node="chat",
                           model="m", max_cost_usd=0.01)


def test_a_budget_set_in_this_process_refuses_the_next_call(db_url: str) -> None:
    team_id = new_team(db_url)
    free = BudgetFreeTeams()
    budgets = TeamBudgets(lambda: session_scope(db_url), free=free)
    assert admit(budgets, team_id, "a") is None
    assert team_id in free  # the next call reads nothing
    assert admit(budgets, team_id, "b") is None

    with session_scope(db_url) as session:
        set_budget(session, "free", 0.0)
    assert team_id not in free
    with pytest.raises(OverBudget):
        admit(budgets, team_id, "c")


def test_a_budget_set_elsewhere_refuses_calls_within_the_interval(db_url: str) -> None:
    team_id = new_team(db_url)
    watcher = ChangeWatcher(db_url, None, interval_s=0.1)
    free = BudgetFreeTeams(watcher)
    watcher.start()
    try:
        budgets = TeamBudgets(lambda: session_scope(db_url), free=free)
        assert admit(budgets, team_id, "a") is None
        assert team_id in free
        # Another process's write: no ORM event here, only the fingerprint can tell.
        with get_engine(db_url).begin() as conn:
            conn.execute(text("UPDATE teams SET budget_usd = 0 WHERE id = :id"), {"id": team_id})
        deadline = time.monotonic() + 30
        refused = False
        while not refused and time.monotonic() < deadline:
            try:
                admit(budgets, team_id, "b")
            except OverBudget:
                refused = True
            else:
                time.sleep(0.05)
        assert refused, "a budget set from another process was never enforced"
    finally:
        watcher.close()


def test_a_job_call_is_reserved_whatever_is_remembered(db_url: str) -> None:
    team_id = new_team(db_url)
    free = BudgetFreeTeams()
    budgets = TeamBudgets(lambda: session_scope(db_url), free=free)
    assert admit(budgets, team_id, "chat") is None
    assert team_id in free
    assert admit(budgets, team_id, "job-call", job_id="job-1") is not None
    with session_scope(db_url) as session:
        rows = session.exec(select(BudgetReservation)).all()
    assert [r.job_id for r in rows] == ["job-1"]
