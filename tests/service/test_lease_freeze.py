"""A worker frozen past its lease (SIGSTOP) while another takes the job over, then thawed (SIGCONT).

Real `yard worker` processes, a live API and SmolLM2: the job's worker is stopped in the middle of
its model call; its lease lapses, the other worker's reconciler hands the job out again and the
other worker finishes it.  Thawed, the frozen worker finishes its model call but writes nothing:
its usage row is fenced off (it no longer holds the lease), it stops, no event or outcome of it
lands.  The job ends in exactly one terminal state, the attempt lost in the frozen worker is
billed as an ``error`` row (its reserved maximum), and the job's cost is the sum of its calls.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from modelyard_platform.jobs import store
from modelyard_platform.models import TERMINAL
from modelyard_registry.catalog import ModelUpdate, update_model
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings

from .conftest import Stack, StackFactory
from .test_jobs_live import submit

# About 3 minutes on a loaded 2-core machine (two workers each loading SmolLM2): opt in with
# MODELYARD_TEST_SOAK=1.
pytestmark = [pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(600)]

MODEL = "smollm2-135m"
LONG = {"prompt": "Count from one to two hundred in words, one number per line.",
        "max_tokens": 160}


def wait_until(predicate: Callable[[], Any], what: str, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s}s")


def owner_worker(stack: Stack, owner: str) -> int:
    """The index of the `yard worker` whose process tree holds the lease owner's process."""
    pid = int(owner.split(":")[1])
    for i, worker in enumerate(stack.workers):
        tree = [worker.pid, *(c.pid for c in psutil.Process(worker.pid).children(recursive=True))]
        if pid in tree:
            return i
    raise AssertionError(f"no worker runs {owner}")


def runner_of(worker_pid: int) -> psutil.Process | None:
    for child in psutil.Process(worker_pid).children(recursive=True):
        try:
            if "modelyard_registry.runtimes.llama_runner" in " ".join(child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def test_a_worker_frozen_past_its_lease_writes_nothing_when_thawed(
        stack_factory: StackFactory) -> None:
    stack = stack_factory(workers=2)
    url = Settings(home=stack.home).effective_database_url
    with session_scope(url) as session:  # priced, so costs compare real numbers, not zeros
        update_model(session, MODEL, ModelUpdate(price_in=50.0, price_out=150.0))
    with stack.client() as http:
        job_id = submit(http, "generate", LONG, model=MODEL)

    def lease() -> str | None:
        with session_scope(url) as session:
            job = store.get_job(session, team_id=None, job_id=job_id)
            return job.lease_owner if job.status.value == "running" else None

    first_owner = wait_until(lease, "the job never started")
    frozen = stack.workers[owner_worker(stack, first_owner)]
    runner = wait_until(lambda: runner_of(frozen.pid), "the worker never started a runner")
    wait_until(lambda: runner.cpu_times().user > 1.0, "the runner never generated")
    os.killpg(frozen.pid, signal.SIGSTOP)
    try:
        with session_scope(url) as session:
            events = [e.type for e in store.events_after(session, job_id, 0)]
        assert "node_finished" not in events, "the generation ended before the freeze"
        job = stack.wait_job(job_id, timeout_s=300)  # the other worker takes over and finishes
    finally:
        os.killpg(frozen.pid, signal.SIGCONT)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2
    with session_scope(url) as session:
        done = store.get_job(session, team_id=None, job_id=job_id)
        assert done.lease_owner is None and done.status in TERMINAL
        before_calls = [(c.id, c.outcome, c.cost_usd) for c in store.job_calls(session, job_id)]
        before_events = [(e.seq, e.type) for e in store.events_after(session, job_id, 0)]

    # Thawed, the frozen worker ends its model call, then stops without writing anything.
    log = stack.home / f"worker-{stack.workers.index(frozen)}.log"
    ended = wait_until(lambda: [line for line in log.read_text(errors="replace").splitlines()
                                if f"job {job_id}: " in line], "the thawed worker never ended")
    assert "lost the lease" in ended[-1], ended
    with session_scope(url) as session:
        after = store.get_job(session, team_id=None, job_id=job_id)
        calls = store.job_calls(session, job_id)
        stored = [(e.seq, e.type, e.data.get("status"))
                  for e in store.events_after(session, job_id, 0)]
    assert [(c.id, c.outcome, c.cost_usd) for c in calls] == before_calls
    assert [(s[0], s[1]) for s in stored] == before_events
    terminal = [s for s in stored if s[1] == "status" and s[2] in {t.value for t in TERMINAL}]
    assert len(terminal) == 1 and after.status.value == "succeeded"
    accepted = [c for c in calls if c.outcome == "accepted"]
    lost = [c for c in calls if c.outcome == "error" and c.attempt == 0]
    assert [c.node for c in accepted] == ["generate"]
    assert len(lost) == 1 and lost[0].cost_usd > 0  # the frozen attempt, billed
    assert after.cost_usd == pytest.approx(sum(c.cost_usd for c in calls), abs=1e-12)
