"""Scale-out: two `yard worker` processes share PostgreSQL and Redis and drain one queue.

Every job succeeds exactly once (one ``succeeded`` status event per job, read back through the
API and its Server-Sent Events), and SIGKILLing one worker in the middle of a job, which is what
losing a machine looks like, loses nothing: its job is taken over once its lease expires (the
other worker, paused meanwhile, runs the rest).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import httpx
import psycopg
import pytest
import redis
from modelyard_platform.jobs.celery_app import QUEUE

from tests.service.conftest import Stack, StackFactory

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

N_JOBS = 180  # under the per-team cap on unfinished jobs (200)


def status_counts(pg_url: str) -> dict[str, int]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
    return {str(status).lower(): int(n) for status, n in rows}


def wait_for(condition: Any, timeout_s: float, what: str, stack: Stack) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    logs = "\n".join(
        f"--- {f}\n" + (stack.home / f).read_text(errors="replace")[-2000:]
        for f in sorted(os.listdir(stack.home)) if f.endswith(".log")
    )
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{logs}")


def in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except ProcessLookupError:
        return False


def freeze_mid_job(pg_url: str, worker: subprocess.Popen[bytes], stack: Stack) -> str:
    """SIGSTOP the worker's process group while one of its children holds a running job.

    The job's owner id is ``host:pid:nonce`` (the child's pid).  Stopping first and then checking
    that the job is still running under that owner makes "killed mid-job" certain, not lucky.
    """

    def attempt() -> str | None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id, lease_owner FROM jobs WHERE status = 'running'"
            ).fetchall()
        for job_id, owner in rows:
            pid = int(str(owner).split(":")[1])
            if not in_group(pid, worker.pid):
                continue
            os.killpg(worker.pid, signal.SIGSTOP)
            # A COMMIT the worker sent just before it stopped still lands at the server: let it,
            # so "still running" below is the job's state for good.
            time.sleep(0.3)
            with psycopg.connect(pg_url, autocommit=True) as conn:
                still = conn.execute(
                    "SELECT 1 FROM jobs WHERE id = %s AND status = 'running' "
                    "AND lease_owner = %s", (job_id, owner)
                ).fetchone()
            if still:
                return str(job_id)
            os.killpg(worker.pid, signal.SIGCONT)  # it finished in between: try again
        return None

    return str(wait_for(attempt, 60, "a job running on the worker to be killed", stack))


def status_events(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """The job's status events, read from its Server-Sent Events stream (ends when terminal)."""
    events = []
    with http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind == "status":
                events.append(json.loads(line.removeprefix("data: ")))
    return events


def test_two_workers_drain_one_queue_exactly_once_and_survive_a_kill(
    stack_factory: StackFactory, pg_url: str, redis_url: str
) -> None:
    stack = stack_factory(database_url=pg_url, workers=0, with_model=False,
                          env={"MODELYARD_RATE_LIMIT_PER_MINUTE": "0"})
    with stack.client() as http:
        ids = []
        for i in range(N_JOBS):
            response = http.post("/v1/products/echo/jobs", json={"input": {"message": f"m{i}"}})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])

    # The Celery list holds wake-ups, not a message per job (#15): one is sent only while none
    # waits (or its mark expired), and a worker's turn runs every queued job.
    broker = redis.Redis.from_url(redis_url)
    assert 1 <= broker.llen(QUEUE) < N_JOBS // 4
    broker.close()

    doomed, survivor = stack.start_worker(), stack.start_worker()
    # The survivor waits until the doomed worker is cut off mid-job: one worker alone drains the
    # queue in about a second now, so the kill must not depend on which one starts first.
    os.killpg(survivor.pid, signal.SIGSTOP)
    wait_for(lambda: status_counts(pg_url).get("succeeded", 0) >= N_JOBS // 4, 120,
             "a quarter of the jobs to succeed", stack)
    cut_job = freeze_mid_job(pg_url, doomed, stack)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    os.killpg(survivor.pid, signal.SIGCONT)
    assert survivor.poll() is None
    assert status_counts(pg_url).get("succeeded", 0) < N_JOBS, "killed after the queue drained"

    # The survivor drains the rest, including the job that was cut off (lease expiry + reconciler).
    wait_for(lambda: status_counts(pg_url) == {"succeeded": N_JOBS}, 120,
             "every job to succeed", stack)

    with stack.client() as http:
        for i, job_id in enumerate(ids):
            job = http.get(f"/v1/jobs/{job_id}").json()
            assert job["status"] == "succeeded", job
            assert job["result"] == {"message": f"m{i}"}
            statuses = status_events(http, job_id)
            succeeded = [e for e in statuses if e["status"] == "succeeded"]
            assert len(succeeded) == 1, (job_id, statuses)
            assert statuses[-1]["status"] == "succeeded", (job_id, statuses)
            # One "running" event per claim that got as far as announcing itself; the last one is
            # the claim that finished the job.
            running = [e["attempt"] for e in statuses if e["status"] == "running"]
            assert running and running == sorted(set(running)), (job_id, statuses)
            assert running[-1] == job["attempts"], (job_id, statuses)
            if job_id == cut_job:
                # Claimed by the killed worker, then by the survivor once the lease ran out.
                assert job["attempts"] == 2, statuses
            else:
                assert job["attempts"] == 1, (job_id, statuses)
