"""Which queued job a free worker takes, with several teams waiting: the fairest team's oldest
job, where the ranking reads indexes only (a claim's cost must not grow with the backlog).
In process, on a real SQLite database and a fresh PostgreSQL one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from modelyard_platform.auth import create_key
from modelyard_platform.jobs import fair, store
from modelyard_platform.models import Job, JobStatus
from modelyard_registry.catalog import utcnow
from modelyard_registry.db import get_engine, session_scope
from modelyard_registry.settings import Settings
from sqlalchemy import event
from sqlmodel import Session


def _jobs(session: Session, team_id: int, n: int, label: str) -> list[str]:
    ids = []
    for i in range(n):
        job, _ = store.create_job(session, team_id=team_id, product="echo",
                                  input_data={"message": f"{label}{i}"}, options={})
        ids.append(job.id)
    return ids


def _set(session: Session, job_id: str, **values: object) -> None:
    job = session.get(Job, job_id)
    assert job is not None
    for name, value in values.items():
        setattr(job, name, value)
    session.add(job)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_fewest_running_then_least_recently_served_then_oldest(
        backend: str, settings: Settings, request: pytest.FixtureRequest) -> None:
    url = (settings.effective_database_url if backend == "sqlite"
           else str(request.getfixturevalue("pg_url")))
    with session_scope(url) as session:
        for team in ("busy", "served", "never"):
            create_key(session, team=team)
    busy, served, never = 1, 2, 3
    with session_scope(url) as session:
        busy_jobs = _jobs(session, busy, 4, "busy")          # oldest jobs, but one runs
        served_jobs = _jobs(session, served, 3, "served")    # ran a job an hour ago
        never_jobs = _jobs(session, never, 2, "never")       # never ran anything
    with session_scope(url) as session:
        _set(session, busy_jobs[0], status=JobStatus.running, attempts=1, started_at=utcnow())
        _set(session, served_jobs[0], status=JobStatus.succeeded, attempts=1,
             started_at=utcnow() - timedelta(hours=1), finished_at=utcnow())
        _set(session, never_jobs[1], attempts=1)  # given back after an error: waits its backoff
        session.commit()

    with session_scope(url) as session:
        picked = fair.fair_candidates(session, limit=5)
    # no team running first, never served before served; each team's oldest first; a job in
    # its retry backoff is not a candidate; the busy team last
    assert picked == [never_jobs[0], served_jobs[1], served_jobs[2], busy_jobs[1], busy_jobs[2]]

    with session_scope(url) as session:  # nothing fresh: no candidate
        for job_id in never_jobs[:1] + served_jobs[1:] + busy_jobs[1:]:
            _set(session, job_id, status=JobStatus.cancelled)
        session.commit()
    with session_scope(url) as session:
        assert fair.fair_candidates(session) == []


def test_the_claim_reads_indexes_not_the_backlog(settings: Settings) -> None:
    """Every statement a claim makes seeks an index on ``jobs``: none scans the table or sorts
    what it matched (SQLite's plan), so a claim costs the same with 10 or 10,000 jobs queued."""
    url = settings.effective_database_url
    with session_scope(url) as session:
        for team in ("ops", "web"):
            create_key(session, team=team)
        _jobs(session, 1, 3, "ops")
        _jobs(session, 2, 2, "web")
    engine = get_engine(url)
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with session_scope(url) as session:
            assert len(fair.fair_candidates(session)) == 5
    finally:
        event.remove(engine, "before_cursor_execute", record)
    claims = [(s, p) for s, p in seen if "FROM jobs" in s]
    assert claims
    with engine.connect() as conn:
        for statement, parameters in claims:
            plan = [str(row[-1]) for row in
                    conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            # a table scan, or a sort of every matching row, grows with the backlog
            scans = [step for step in plan if step.startswith("SCAN j") or "TEMP B-TREE" in step]
            assert not scans, (statement, plan)
