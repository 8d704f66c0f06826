"""What budget admission costs per call, in process on a real database (SQLite or PostgreSQL).

Three paths, best-of and median over ``--calls`` admissions each, same process and database:
- ``check``: the old admission, a read of the team and of this month's spend (``check_budget``);
- ``no-budget``: ``TeamBudgets.reserve`` for a team without a budget (what most chat calls pay);
- ``reserve+settle``: a budget team's reservation (row lock, one-statement read, insert, commit)
  plus its settlement in a usage row's transaction (the usage row's own cost is not counted).

    .venv/bin/python bench/budget_admission.py [--calls 500] [--postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

import psycopg
from modelyard_platform.budget import TeamBudgets
from modelyard_platform.models import Team
from modelyard_platform.usage import check_budget
from modelyard_registry.db import get_engine, session_scope
from modelyard_registry.scores import Call

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def timed(n: int, one: Callable[[int], None]) -> tuple[float, float]:
    laps = []
    for i in range(n):
        start = time.perf_counter()
        one(i)
        laps.append((time.perf_counter() - start) * 1000)
    return min(laps), statistics.median(laps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    dropped = None
    if args.postgres:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url, dropped = f"postgresql://postgres@127.0.0.1:5432/{name}", name
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    try:
        get_engine(url)
        with session_scope(url) as session:
            free, capped = Team(name="free"), Team(name="capped", budget_usd=1e9)
            session.add_all([free, capped])
            session.commit()
            free_id, capped_id = free.id, capped.id
        assert free_id is not None and capped_id is not None
        budgets = TeamBudgets(lambda: session_scope(url))

        def check(_: int) -> None:
            with session_scope(url) as session:
                check_budget(session, capped_id)
                session.commit()

        def no_budget(i: int) -> None:
            budgets.reserve(team_id=free_id, request_id=f"f{i}", job_id=None, node=None,
                            model="m", max_cost_usd=0.01)

        def reserve_settle(i: int) -> None:
            settle = budgets.reserve(team_id=capped_id, request_id=f"c{i}", job_id=None,
                                     node=None, model="m", max_cost_usd=0.01)
            assert settle is not None
            with session_scope(url) as session:
                session.add(Call(request_id=f"c{i}", team_id=capped_id, model_name="m",
                                 cost_usd=0.001, outcome="accepted"))
                settle(session)
                session.commit()

        def usage_row(i: int) -> None:  # the settle's baseline: the same usage row alone
            with session_scope(url) as session:
                session.add(Call(request_id=f"u{i}", team_id=capped_id, model_name="m",
                                 cost_usd=0.001, outcome="accepted"))
                session.commit()

        db = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{db}, {args.calls} calls each: ms per call (best / median)")
        paths = [("check (old admission)", check), ("no-budget reserve", no_budget),
                 ("usage row alone", usage_row), ("reserve + settle + row", reserve_settle)]
        for label, fn in paths:
            best, median = timed(args.calls, fn)
            print(f"  {label:<24} {best:7.3f} / {median:7.3f}")
    finally:
        if dropped:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)')


if __name__ == "__main__":
    main()
