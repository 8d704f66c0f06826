"""Job submission under more concurrent clients than the API has worker threads (#15).

64 submitters against a live `yard api`, more than anyio's 40 worker threads and the database
pool's 15 connections: every job is accepted, none waits on the pool (a pool wait shows as a
500 after 30 s, or a client timeout at 20 s).  It used to hang: the sync route kept its
connection through the response's serialisation, which waits for a worker thread, while every
worker thread waited for a connection.
"""

from __future__ import annotations

import httpx
from modelyard_platform.models import Job
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings
from sqlmodel import select

from .conftest import StackFactory, burst

CLIENTS, EACH = 64, 3


def test_more_submitters_than_worker_threads_all_get_their_jobs_in(
        stack_factory: StackFactory, database_url: str | None) -> None:
    stack = stack_factory(database_url=database_url, workers=0, with_model=False,
                          env={"MODELYARD_RATE_LIMIT_PER_MINUTE": "0",
                               "MODELYARD_TEAM_MAX_JOBS": "0"})

    def submit(http: httpx.Client, i: int, n: int) -> httpx.Response:
        return http.post("/v1/products/echo/jobs", json={"input": {"message": f"{i}-{n}"}})

    answered, failures = burst(stack.base_url, stack.admin_key, CLIENTS, EACH, submit, ok=202)
    assert failures == []
    accepted = [r.json()["id"] for r in answered]
    assert len(accepted) == CLIENTS * EACH
    url = Settings(home=stack.home, database_url=database_url).effective_database_url
    with session_scope(url) as session:
        stored = set(session.exec(select(Job.id)).all())
    assert set(accepted) == stored
