"""Chaos: real API and worker processes, a private Redis and PostgreSQL, faults mid-run.

A worker SIGKILLed in the middle of a generation, Redis restarted and PostgreSQL restarted while
jobs run and their event streams are open. After each fault, whatever happened in between:
- every job reaches exactly one terminal state (one terminal status event, a terminal row);
- the job's recorded cost is the sum of its calls' costs;
- a client that kept reading (reconnecting with ``Last-Event-ID`` when its stream broke) saw
  every stored event exactly once, in order;
- ``/readyz`` answered 503 while a dependency was away and 200 once it was back.

The servers are this test's own (``tests/private_services.py``): the machine's shared Redis and
PostgreSQL are never stopped. SmolLM2 and short generations keep each test within a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import psutil
import pytest
from modelyard_platform.jobs import store
from modelyard_platform.models import TERMINAL
from modelyard_registry.catalog import ModelUpdate, update_model
from modelyard_registry.db import session_scope

from tests.private_services import PrivatePostgres, PrivateRedis

from .conftest import Stack, StackFactory
from .sse_reader import EventReader
from .test_jobs_live import submit

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

MODEL = "smollm2-135m"
# Enough output that a kill lands inside the generation; small enough to rerun in seconds.
LONG = {"prompt": "Write a long story about a dragon who learns to fly.", "max_tokens": 64}
SHORT = {"prompt": "Name three colours.", "max_tokens": 16}
# One llama.cpp thread per runner: on a busy machine two threads that spin-wait on each other
# slow generation down by an order of magnitude, and these tests want seconds, not minutes.
ENV = {"MODELYARD_N_THREADS": "1"}


@pytest.fixture
def redis_url(private_redis: PrivateRedis) -> str:
    """The stack's broker is this test's own Redis (overrides the shared-Redis database)."""
    return private_redis.url


def chaos_stack(stack_factory: StackFactory, postgres: PrivatePostgres, workers: int = 1
                ) -> Stack:
    stack = stack_factory(database_url=postgres.database("chaos"), workers=workers, env=ENV)
    with session_scope(stack.env["DATABASE_URL"]) as session:
        # priced, so "cost = sum of the calls" compares real numbers, not zeros
        update_model(session, MODEL, ModelUpdate(price_in=50.0, price_out=150.0))
    return stack


def reader(stack: Stack, job_id: str) -> EventReader:
    events = EventReader(stack.base_url, stack.admin_key, job_id)
    events.start()
    return events


def wait_ready(stack: Stack, status: int, timeout_s: float = 60) -> dict[str, Any]:
    """Poll ``/readyz`` until it answers ``status`` (a bound on the wait, not a timing check)."""
    deadline = time.monotonic() + timeout_s
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{stack.base_url}/readyz", timeout=10)
            if last.status_code == status:
                return dict(last.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"/readyz never answered {status}: {last and last.text}")


def node_started(event: dict[str, Any]) -> bool:
    return event["type"] == "node_started"


def check_integrity(stack: Stack, readers: dict[str, EventReader]) -> dict[str, Any]:
    """The three invariants for every job; returns the jobs' rows as the API shows them."""
    jobs = {job_id: stack.wait_job(job_id, timeout_s=240) for job_id in readers}
    for events in readers.values():
        assert events.done.wait(60), f"stream of {events.url} never saw the terminal event"
    with session_scope(stack.env["DATABASE_URL"]) as session:
        for job_id, events in readers.items():
            row = store.get_job(session, team_id=None, job_id=job_id)
            stored = [(e.seq, e.type, e.data.get("status")) for e in
                      store.events_after(session, job_id, 0)]
            terminal = [s for s in stored if s[1] == "status" and s[2] in
                        {t.value for t in TERMINAL}]
            assert row.status in TERMINAL and len(terminal) == 1, (job_id, stored)
            assert terminal[0][2] == row.status.value
            calls = store.job_calls(session, job_id)
            assert row.cost_usd == pytest.approx(sum(c.cost_usd for c in calls), abs=1e-12)
            seen = [(e["seq"], e["type"], e.get("status")) for e in events.events]
            assert seen == stored, f"{job_id}: client saw {seen}, stored {stored}"
            assert [s[0] for s in stored] == list(range(1, len(stored) + 1))
    return jobs


def runner_of(stack: Stack) -> psutil.Process | None:
    """The llama.cpp runner process a worker of this stack started, if any."""
    for worker in stack.workers:
        if worker.poll() is not None:
            continue
        for child in psutil.Process(worker.pid).children(recursive=True):
            try:
                if "modelyard_registry.runtimes.llama_runner" in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
    return None


def wait_until(predicate: Callable[[], Any], what: str, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout_s}s")


def test_a_worker_killed_mid_generation_finishes_the_job_once(
    private_postgres: PrivatePostgres, stack_factory: StackFactory
) -> None:
    stack = chaos_stack(stack_factory, private_postgres)
    with stack.client() as http:
        job_id = submit(http, "generate", LONG, model=MODEL)
    events = reader(stack, job_id)
    events.wait_for(node_started)
    runner = wait_until(lambda: runner_of(stack), "the worker never started a runner")
    # generating: the runner has spent CPU on tokens, not only on mapping the model
    wait_until(lambda: runner.cpu_times().user > 0.5, "the runner never generated")
    stack.kill_workers()
    with session_scope(stack.env["DATABASE_URL"]) as session:
        before = [e.type for e in store.events_after(session, job_id, 0)]
    assert "node_finished" not in before, "the generation ended before the kill"
    # its owner gone, the runner exits by itself: a lost worker leaks no model process
    gone, _ = psutil.wait_procs([runner], timeout=30)
    if not gone:
        runner.kill()
    assert gone, "the runner outlived its SIGKILLed worker"

    stack.start_worker()
    jobs = check_integrity(stack, {job_id: events})
    job = jobs[job_id]
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2
    accepted = [c for c in job["calls"] if c["outcome"] == "accepted"]
    assert [c["node"] for c in accepted] == ["generate"] and accepted[0]["cost_usd"] > 0
    assert job["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in job["calls"]))


def test_redis_restart_mid_run_with_streams_open(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, stack_factory: StackFactory
) -> None:
    stack = chaos_stack(stack_factory, private_postgres)
    with stack.client() as http:
        ids = [submit(http, "generate", LONG, model=MODEL),
               submit(http, "generate", SHORT, model=MODEL),
               submit(http, "echo", {"message": "before"})]
        readers = {job_id: reader(stack, job_id) for job_id in ids}
        readers[ids[0]].wait_for(node_started)
        with private_redis.outage():
            down = wait_ready(stack, 503)
            assert down["checks"]["database"] == "ok"
            assert down["checks"]["broker"].startswith("error")
            # accepted while the broker is away: the row is the truth, enqueued once it is back
            during = submit(http, "echo", {"message": "during the outage"})
            readers[during] = reader(stack, during)
            readers[ids[1]].drop()  # a client that loses its connection now resumes
            readers[during].wait_for(lambda e: e["type"] == "status")
        wait_ready(stack, 200)
        readers[ids[2]].drop()
        after = submit(http, "echo", {"message": "after"})
        readers[after] = reader(stack, after)
    jobs = check_integrity(stack, readers)
    assert {j["status"] for j in jobs.values()} == {"succeeded"}, jobs
    assert readers[ids[1]].connections >= 2
    assert readers[ids[0]].connections == 1  # an open stream outlives the Redis restart


def test_postgres_restart_mid_run_with_streams_open(
    private_postgres: PrivatePostgres, stack_factory: StackFactory
) -> None:
    stack = chaos_stack(stack_factory, private_postgres)
    with stack.client() as http:
        ids = [submit(http, "generate", LONG, model=MODEL),
               submit(http, "generate", SHORT, model=MODEL),
               submit(http, "echo", {"message": "before"})]
        readers = {job_id: reader(stack, job_id) for job_id in ids}
        readers[ids[0]].wait_for(node_started)
        with private_postgres.outage():
            down = wait_ready(stack, 503)
            assert down["checks"]["broker"] == "ok"
            assert down["checks"]["database"].startswith("error")
            refused = http.post("/v1/products/echo/jobs", json={"input": {"message": "x"}})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["type"] == "unavailable"
            assert refused.headers["Retry-After"]
            readers[ids[1]].drop()  # reconnects meet a 503 until the database is back
            readers[ids[1]].wait_for_refusal()
        wait_ready(stack, 200)
        after = submit(http, "echo", {"message": "after"})
        readers[after] = reader(stack, after)
    jobs = check_integrity(stack, readers)
    assert {j["status"] for j in jobs.values()} == {"succeeded"}, jobs
    assert readers[ids[1]].connections >= 2 and 503 in readers[ids[1]].refused
    assert readers[ids[0]].connections == 1  # an open stream outlives the database restart
