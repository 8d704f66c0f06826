"""What a worker's fair-share pick costs as the backlog grows (#15).

Every worker runs ``jobs.fair.fair_candidates`` once per job it claims, so its cost must stay
flat with the number of jobs queued and with the history. This fills a fresh database with
``--backlog`` queued jobs spread over ``--teams`` teams (plus ``--history`` finished ones) and
times the pick, in process. Run it with PYTHONPATH pointing at another checkout's packages to
measure that checkout (its own migrations and code) against this one, back to back.

    .venv/bin/python bench/claim_cost.py [--backlog 10 1000 5000] [--teams 1 20] [--postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from modelyard_platform.auth import create_key
from modelyard_platform.jobs import fair
from modelyard_platform.models import Job, JobStatus
from modelyard_registry.catalog import utcnow
from modelyard_registry.db import get_engine, session_scope
from sqlalchemy import text

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fill(url: str, teams: int, backlog: int, history: int) -> None:
    with session_scope(url) as session:
        for t in range(teams):
            create_key(session, team=f"team{t}")
        now = utcnow()
        for i in range(backlog + history):
            done = i < history
            session.add(Job(id=uuid.uuid4().hex, team_id=1 + i % teams, product="echo",
                            input={"message": "x"}, attempts=1 if done else 0,
                            status=JobStatus.succeeded if done else JobStatus.queued,
                            started_at=now if done else None, created_at=now))
        session.commit()
        if url.startswith("postgresql"):  # what autovacuum does after a burst of inserts
            session.exec(text("ANALYZE jobs"))  # type: ignore[call-overload]
            session.commit()


def time_pick(url: str, rounds: int) -> tuple[float, float]:
    with session_scope(url) as session:
        fair.fair_candidates(session)  # warm: statement cache, pages
        samples = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            fair.fair_candidates(session)
            samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, nargs="+", default=[10, 1000, 5000])
    parser.add_argument("--teams", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--history", type=int, default=5000,
                        help="finished jobs in the table besides the backlog")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    print(f"code: {Path(fair.__file__).resolve()}")
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; history {args.history} "
          f"finished jobs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'teams':>6} {'backlog':>8} {'pick p50 ms':>12} {'pick p99 ms':>12}")
    for teams in args.teams:
        for backlog in args.backlog:
            if args.postgres:
                name = f"bench_claim_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                url = f"postgresql://postgres@127.0.0.1:5432/{name}"
            else:
                url = f"sqlite:///{tempfile.mkdtemp(prefix='modelyard-claim-')}/m.db"
            try:
                fill(url, teams, backlog, args.history)
                p50, p99 = time_pick(url, args.rounds)
                print(f"{teams:>6} {backlog:>8} {p50:>12.3f} {p99:>12.3f}")
            finally:
                if args.postgres:
                    get_engine(url).dispose()
                    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
