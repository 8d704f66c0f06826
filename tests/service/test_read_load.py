"""Reads that take a request session, under more concurrent clients than threads + pool (#15).

128 clients list their jobs and read their usage from a live `yard api` (sync routes, each on
one of anyio's 40 worker threads, sharing the database pool's 15 connections): every request
answers 200.  It used to hang: a sync route kept its connection through the response's
serialisation, which waits for a worker thread, while every worker thread waited for a
connection; requests failed after 30 s (a 500) or the client gave up at 20 s (368 of 512 on
SQLite; 64 clients did not always get there).
"""

from __future__ import annotations

import httpx

from .conftest import StackFactory, burst

CLIENTS, EACH = 128, 4
READS = ("/v1/jobs?limit=5", "/v1/usage")


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

    def read(http: httpx.Client, i: int, n: int) -> httpx.Response:
        return http.get(READS[(i + n) % len(READS)])

    answered, failures = burst(stack.base_url, stack.admin_key, CLIENTS, EACH, read)
    assert failures == []
    assert len(answered) == CLIENTS * EACH
