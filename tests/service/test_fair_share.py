"""Fair share between teams, through real API and worker processes: one team's backlog does not
starve another team's job, and a team's unfinished jobs are capped (429)."""

from __future__ import annotations

from datetime import datetime

import pytest

from .conftest import StackFactory
from .test_jobs_live import submit

pytestmark = pytest.mark.slow

def when(job: dict[str, object], name: str) -> datetime:
    value = job[name]
    assert isinstance(value, str), f"{name} missing in {job}"
    return datetime.fromisoformat(value)


def test_teams_take_turns_on_a_worker(stack_factory: StackFactory) -> None:
    """Team A queues six jobs, then team B three, before the worker starts (a backlog, as after
    a burst). One worker process (concurrency 1) then alternates between the teams: B's first
    job starts right after A's first, not after all six (one FIFO queue: AAAAAABBB)."""
    stack = stack_factory(workers=0, with_model=False)
    key_a, key_b = stack.key("team-a"), stack.key("team-b")
    with stack.client(key_a) as http_a:
        a_ids = [submit(http_a, "echo", {"message": f"a{n}"}) for n in range(6)]
    with stack.client(key_b) as http_b:
        b_ids = [submit(http_b, "echo", {"message": f"b{n}"}) for n in range(3)]
    stack.start_worker()
    jobs = [stack.wait_job(i, key=key_a) for i in a_ids]
    jobs += [stack.wait_job(i, key=key_b) for i in b_ids]
    assert {j["status"] for j in jobs} == {"succeeded"}, jobs
    order = "".join("A" if j["id"] in a_ids else "B"
                    for j in sorted(jobs, key=lambda j: when(j, "started_at")))
    assert order == "ABABABAAA"
    # within a team, its own jobs still run in the order they were submitted
    a_started = [when(j, "started_at") for j in jobs if j["id"] in a_ids]
    assert a_started == sorted(a_started)


def test_unfinished_jobs_per_team_are_capped(stack_factory: StackFactory) -> None:
    """With no worker, jobs stay queued: the fourth of a team capped at three is a 429 with the
    standard error body; a replay of an accepted request, another team, and a team that
    cancelled one of its jobs are still served."""
    stack = stack_factory(workers=0, with_model=False, env={"MODELYARD_TEAM_MAX_JOBS": "3"})
    key_a, key_b = stack.key("team-a"), stack.key("team-b")
    body = {"input": {"message": "hi"}, "options": {}}
    with stack.client(key_a) as http:
        first = http.post("/v1/products/echo/jobs", json=body, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 202, first.text
        ids = [first.json()["id"], submit(http, "echo", {"message": "2"}),
               submit(http, "echo", {"message": "3"})]

        over = http.post("/v1/products/echo/jobs", json=body)
        assert over.status_code == 429, over.text
        error = over.json()["error"]
        assert error["type"] == "too_many_jobs"
        assert "3 jobs queued or running" in error["message"]
        assert over.headers["Retry-After"] == "60"

        replay = http.post("/v1/products/echo/jobs", json=body, headers={"Idempotency-Key": "k1"})
        assert replay.status_code == 202, replay.text
        assert replay.json()["id"] == ids[0]

        listed = http.get("/v1/jobs", params={"limit": 10}).json()
        assert len(listed["data"]) == 3  # the refused request stored nothing

        assert http.post(f"/v1/jobs/{ids[1]}/cancel").status_code == 200
        submit(http, "echo", {"message": "after a cancel"})
    with stack.client(key_b) as other:
        submit(other, "echo", {"message": "another team"})


def test_cap_of_zero_means_no_limit(stack_factory: StackFactory) -> None:
    stack = stack_factory(workers=0, with_model=False, env={"MODELYARD_TEAM_MAX_JOBS": "0"})
    with stack.client(stack.key("team-a")) as http:
        for n in range(5):
            submit(http, "echo", {"message": str(n)})
        listed = http.get("/v1/jobs", params={"limit": 10}).json()
    assert len(listed["data"]) == 5
