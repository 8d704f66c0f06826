"""A worker turn runs queued jobs back to back, fairest first, and wake-ups do not pile up: the
job path of #15 that sends one broker message per burst instead of one per job.  In process, on
a real SQLite database and a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from modelyard_platform.auth import create_key
from modelyard_platform.jobs import store
from modelyard_platform.jobs.events import EventBus
from modelyard_platform.jobs.runner import IDLE, JobRunner
from modelyard_platform.jobs.turn import Turn
from modelyard_platform.jobs.wake import Waker
from modelyard_platform.models import JobStatus
from modelyard_platform.products import all_products
from modelyard_registry.db import session_scope
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings


def runner_for(settings: Settings) -> JobRunner:
    url = settings.effective_database_url

    def sessions() -> Any:
        return session_scope(url)

    return JobRunner(settings, sessions, Cascade(sessions, settings, RuntimeFactory(settings)),
                     EventBus(None), all_products())


def queue(settings: Settings, team_id: int, n: int) -> list[str]:
    with session_scope(settings.effective_database_url) as session:
        return [store.create_job(session, team_id=team_id, product="echo",
                                 input_data={"message": f"{team_id}-{i}"}, options={})[0].id
                for i in range(n)]


def test_one_turn_runs_every_queued_job_alternating_between_teams(settings: Settings) -> None:
    with session_scope(settings.effective_database_url) as session:
        create_key(session, team="a")
        create_key(session, team="b")
    a_ids, b_ids = queue(settings, 1, 4), queue(settings, 2, 2)
    woken: list[int] = []
    turn = Turn(runner_for(settings), budget_s=60, wake=lambda: woken.append(1),
                retry=lambda job_id, retries: None)

    outcomes = turn.take()

    assert outcomes == ["succeeded"] * 6 + [IDLE]
    # another worker is woken at each claim that leaves jobs queued (jobs submitted together do
    # not wait behind one worker's long job), not after the last, nor at the end (none waits)
    assert len(woken) == 5
    with session_scope(settings.effective_database_url) as session:
        jobs = [store.get_job(session, team_id=None, job_id=j) for j in a_ids + b_ids]
    assert {j.status for j in jobs} == {JobStatus.succeeded}
    order = "".join("A" if j.id in a_ids else "B"
                    for j in sorted(jobs, key=lambda j: (j.started_at, j.id)))
    assert order == "ABABAA"


def test_a_turn_past_its_budget_stops_and_asks_for_another(settings: Settings) -> None:
    with session_scope(settings.effective_database_url) as session:
        create_key(session, team="a")
    ids = queue(settings, 1, 3)
    woken: list[int] = []
    turn = Turn(runner_for(settings), budget_s=0, wake=lambda: woken.append(1),
                retry=lambda job_id, retries: None)

    assert turn.take() == ["succeeded"]
    assert len(woken) == 2  # at the claim (two more waited), and for the turn it hands on
    with session_scope(settings.effective_database_url) as session:
        left = [store.get_job(session, team_id=None, job_id=j).status for j in ids]
    assert left.count(JobStatus.queued) == 2


def test_a_wake_up_is_sent_once_until_a_turn_takes_it(redis_url: str) -> None:
    sent: list[int] = []
    api, worker = Waker(redis_url, lambda: sent.append(1)), Waker(redis_url, lambda: None)
    try:
        assert api.wake() is True
        assert api.wake() is False  # one already waits: its turn will see this job too
        worker.taken()
        assert api.wake() is True
        assert sent == [1, 1]
    finally:
        api.close()
        worker.close()


def test_a_failed_send_leaves_no_mark_behind(redis_url: str) -> None:
    def broken() -> None:
        raise ConnectionError("broker away")

    failing, working = Waker(redis_url, broken), Waker(redis_url, lambda: None)
    try:
        with pytest.raises(ConnectionError):
            failing.wake()
        assert working.wake() is True  # not blocked by a wake-up that never left
    finally:
        failing.close()
        working.close()
