"""Job submission under more concurrent clients than the API has worker threads (#15).

64 submitters against a live `yard api`, more than anyio's 40 worker threads and the database
pool's 15 connections: every job is accepted, none waits on the pool (a pool wait shows as a
500 after 30 s, or a client timeout at 20 s).  It used to hang: the sync route kept its
connection through the response's serialisation, which waits for a worker thread, while every
worker thread waited for a connection.
"""

from __future__ import annotations

import threading

import httpx
import pytest
from modelyard_platform.models import Job
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings
from sqlmodel import select

from .conftest import StackFactory

CLIENTS, EACH = 64, 3


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def test_more_submitters_than_worker_threads_all_get_their_jobs_in(
        stack_factory: StackFactory, database_url: str | None) -> None:
    stack = stack_factory(database_url=database_url, workers=0, with_model=False,
                          env={"MODELYARD_RATE_LIMIT_PER_MINUTE": "0",
                               "MODELYARD_TEAM_MAX_JOBS": "0"})
    accepted: list[str] = []
    failures: list[str] = []
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> None:
        headers = {"Authorization": f"Bearer {stack.admin_key}"}
        with httpx.Client(base_url=stack.base_url, headers=headers, timeout=20) as http:
            start.wait()
            for n in range(EACH):
                try:
                    r = http.post("/v1/products/echo/jobs",
                                  json={"input": {"message": f"{i}-{n}"}})
                except httpx.HTTPError as exc:
                    failures.append(type(exc).__name__)
                    continue
                if r.status_code == 202:
                    accepted.append(r.json()["id"])
                else:
                    failures.append(f"{r.status_code}: {r.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    assert len(accepted) == CLIENTS * EACH
    url = Settings(home=stack.home, database_url=database_url).effective_database_url
    with session_scope(url) as session:
        stored = set(session.exec(select(Job.id)).all())
    assert set(accepted) == stored
