"""Every queued job gets a turn: a message whose job already ran on another message's turn
(fair share picked it first) runs the fairest queued job instead, so none waits for the
reconciler with no message left for it.  In process, on a real SQLite database."""

from __future__ import annotations

from typing import Any

from modelyard_platform.auth import create_key
from modelyard_platform.jobs import store
from modelyard_platform.jobs.events import EventBus
from modelyard_platform.jobs.runner import JobRunner
from modelyard_platform.models import JobStatus
from modelyard_platform.products import all_products
from modelyard_registry.db import session_scope
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings


def test_a_message_whose_job_ran_on_another_turn_runs_the_next_queued_job(
        settings: Settings) -> None:
    url = settings.effective_database_url

    def sessions() -> Any:
        return session_scope(url)

    with session_scope(url) as session:
        create_key(session, team="ops")
        older, _ = store.create_job(session, team_id=1, product="echo",
                                    input_data={"message": "older"}, options={})
        newer, _ = store.create_job(session, team_id=1, product="echo",
                                    input_data={"message": "newer"}, options={})
    runner = JobRunner(settings, sessions, Cascade(sessions, settings, RuntimeFactory(settings)),
                       EventBus(None), all_products())

    runner.run(newer.id)  # the newer job's message: fair share runs the older job first
    runner.run(older.id)  # the older job's message: its job is done, so it runs the newer one

    with session_scope(url) as session:
        statuses = {j: store.get_job(session, team_id=None, job_id=j).status
                    for j in (older.id, newer.id)}
    assert statuses == {older.id: JobStatus.succeeded, newer.id: JobStatus.succeeded}
