"""Reads that take a request session, under more concurrent clients than threads + pool (#15).

128 clients list their jobs and read their usage from a live `yard api` (sync routes, each on
one of anyio's 40 worker threads, sharing the database pool's 15 connections): every request
answers 200.  It used to hang: a sync route kept its connection through the response's
serialisation, which waits for a worker thread, while every worker thread waited for a
connection; requests failed after 30 s (a 500) or the client gave up at 20 s (368 of 512 on
SQLite; 64 clients did not always get there).
"""

from __future__ import annotations

import threading

import httpx
import pytest

from .conftest import StackFactory

CLIENTS, EACH = 128, 4
READS = ("/v1/jobs?limit=5", "/v1/usage")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def test_more_readers_than_threads_and_connections_all_get_answers(
        stack_factory: StackFactory, database_url: str | None) -> None:
    stack = stack_factory(database_url=database_url, workers=0, with_model=False,
                          env={"MODELYARD_RATE_LIMIT_PER_MINUTE": "0",
                               "MODELYARD_TEAM_MAX_JOBS": "0"})
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=20) as http:
        for n in range(3):  # something to list
            assert http.post("/v1/products/echo/jobs",
                             json={"input": {"message": str(n)}}).status_code == 202
    answered: list[str] = []
    failures: list[str] = []
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> None:
        with httpx.Client(base_url=stack.base_url, headers=headers, timeout=20) as http:
            start.wait()
            for n in range(EACH):
                path = READS[(i + n) % len(READS)]
                try:
                    r = http.get(path)
                except httpx.HTTPError as exc:
                    failures.append(f"{path}: {type(exc).__name__}")
                    continue
                if r.status_code == 200:
                    answered.append(path)
                else:
                    failures.append(f"{path} {r.status_code}: {r.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    assert len(answered) == CLIENTS * EACH
