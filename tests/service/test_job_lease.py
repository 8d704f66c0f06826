"""A worker that lost its job's lease stops at its next step and writes nothing more.

In process, on a real SQLite database: while a product runs, the job's lease lapses and another
worker claims it (the real ``store.claim``), which is what a worker frozen past its lease wakes up
to.  The first worker's next progress event must stop it, before it writes an event or an outcome.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import redis.exceptions
from modelyard_platform.auth import create_key
from modelyard_platform.jobs import step_writer, store
from modelyard_platform.jobs.events import EventBus
from modelyard_platform.jobs.runner import JobRunner
from modelyard_platform.jobs.step_writer import GAP_S
from modelyard_platform.jobs.store import StepEvent, lease
from modelyard_platform.jobs.transient import is_transient
from modelyard_platform.models import Job, JobStatus
from modelyard_platform.products import EchoInput, EchoOutput
from modelyard_registry.catalog import utcnow
from modelyard_registry.db import get_engine, session_scope
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings
from pydantic import BaseModel
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import update
from sqlmodel import Session, col


class Probe:
    """What this file's products share: ``echo``'s models, two steps, the settings to look with."""

    slug = "probe"
    title = "Probe"
    description = "A product a test drives step by step."
    input_model: type[BaseModel] = EchoInput
    output_model: type[BaseModel] = EchoOutput
    steps: tuple[str, ...] = ("first", "second")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reached_second = False


def queued_job(settings: Settings, product: Probe) -> tuple[JobRunner, str]:
    """A queued job of ``product`` for a new team, and an in-process runner for it."""
    url = settings.effective_database_url

    def sessions() -> Any:
        return session_scope(url)

    with session_scope(url) as session:
        create_key(session, team="ops")
        job, _ = store.create_job(session, team_id=1, product=product.slug,
                                  input_data={"message": "x"}, options={})
    runner = JobRunner(settings, sessions, Cascade(sessions, settings, RuntimeFactory(settings)),
                       EventBus(None), {product.slug: product})
    return runner, job.id


class TakenOver(Probe):
    """A product during which another worker takes the job over (its lease having lapsed)."""

    slug = "taken-over"

    def run(self, input_data: dict[str, Any], ctx: Any) -> dict[str, Any]:
        ctx.progress({"type": "node_started", "node": "first"})
        wait_for_event(self.settings, ctx.job_id, ("node_started", "first"))  # the step runs
        with session_scope(self.settings.effective_database_url) as session:
            session.execute(update(Job).where(col(Job.id) == ctx.job_id)
                            .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
            session.commit()
            assert store.claim(session, ctx.job_id, "another-worker", 30) is not None
        time.sleep(GAP_S * 3)  # frozen past its lease (in earnest: for seconds)
        ctx.progress({"type": "node_finished", "node": "first"})
        self.reached_second = True
        return {"message": "written by a worker that no longer owns the job"}


def test_a_worker_that_lost_its_lease_stops_at_its_next_step(settings: Settings) -> None:
    product = TakenOver(settings)
    runner, job_id = queued_job(settings, product)

    outcome = runner.run(job_id)

    assert outcome.startswith("lost the lease")
    assert not product.reached_second
    with session_scope(settings.effective_database_url) as session:
        row = store.get_job(session, team_id=None, job_id=job_id)
        assert row.status == JobStatus.running and row.lease_owner == "another-worker"
        assert row.result is None and row.error is None
        events = [(e.type, e.data.get("node")) for e in store.events_after(session, job_id, 0)]
    assert events == [("status", None), ("status", None), ("node_started", "first")]


def wait_for_event(settings: Settings, job_id: str, wanted: tuple[str, str]) -> list[Any]:
    """Poll the job's log (as a watcher would) until ``(type, node)`` is in it; the log seen."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with session_scope(settings.effective_database_url) as session:
            seen = [(e.type, e.data.get("node")) for e in store.events_after(session, job_id, 0)]
        if wanted in seen:
            return seen
        time.sleep(GAP_S / 5)
    raise AssertionError(f"{wanted} never reached the log: {seen}")


def claimed_echo_job(session: Session, owner: str) -> Job:
    """A fresh ``echo`` job of a new team, claimed by ``owner``."""
    create_key(session, team="ops")
    job, _ = store.create_job(session, team_id=1, product="echo", input_data={"message": "x"},
                              options={})
    assert store.claim(session, job.id, owner, 30) is not None
    return job


def test_infrastructure_errors_are_transient_and_job_errors_are_not() -> None:
    assert is_transient(psycopg.OperationalError("server closed the connection"))
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert is_transient(redis.exceptions.ConnectionError("Connection refused"))
    try:
        try:
            raise psycopg.OperationalError("terminating connection")
        except psycopg.OperationalError as exc:
            raise RuntimeError("checkpoint write failed") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(ValueError("bad input"))
    assert not is_transient(KeyError("category"))


def test_a_job_ends_together_with_its_terminal_event(settings: Settings,
                                                     monkeypatch: Any) -> None:
    """The status change and its ``status`` event commit as one: a reader never sees a finished
    job whose terminal event is missing (an event stream used to end without it), and a failure
    to write the event leaves the job running for the next worker, never ended in silence."""
    with session_scope(settings.effective_database_url) as session:
        job = claimed_echo_job(session, "w1")
        before = len(store.events_after(session, job.id, 0))
        last_step = [StepEvent("node_finished", {"node": "echo"}, 0.99)]

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the database went away")

        for steps in ((), last_step):  # the status event alone, or with the last step's
            with monkeypatch.context() as patched:
                patched.setattr(lease, "stage_events", broken)
                try:
                    store.finish(session, job.id, "w1", JobStatus.succeeded,
                                 result={"message": "x"}, steps=steps)
                except RuntimeError:
                    session.rollback()
            row = store.get_job(session, team_id=None, job_id=job.id)
            assert row.status == JobStatus.running and row.result is None
            assert len(store.events_after(session, job.id, 0)) == before

        assert store.finish(session, job.id, "w1", JobStatus.succeeded, result={"message": "x"},
                            steps=last_step)
        seen = [(e.type, e.data.get("status")) for e in store.events_after(session, job.id, 0)]
        assert seen[before:] == [("node_finished", None), ("status", "succeeded")]
        assert store.get_job(session, team_id=None, job_id=job.id).status == JobStatus.succeeded
        assert not store.cancel_job(session, store.get_job(session, team_id=None, job_id=job.id))


def test_a_step_event_goes_in_only_under_the_writers_live_lease(settings: Settings) -> None:
    """The lease check is the INSERT's own condition: the lease holder's step event goes in with
    its progress; another worker's, and any after a cancel, write nothing at all."""
    with session_scope(settings.effective_database_url) as session:
        job = claimed_echo_job(session, "w1")
        before = len(store.events_after(session, job.id, 0))

        held = store.add_held_step_events(session, job.id, "w1",
                                          [StepEvent("node_finished", {"node": "first"}, 0.5)])
        assert held == before + 1
        assert store.add_held_step_events(
            session, job.id, "w2", [StepEvent("node_started", {"node": "second"}, 0.9)]) is None
        assert store.cancel_job(session, store.get_job(session, team_id=None, job_id=job.id))
        assert store.add_held_step_events(
            session, job.id, "w1", [StepEvent("node_started", {"node": "second"}, 0.9)]) is None

        row = store.get_job(session, team_id=None, job_id=job.id)
        assert row.progress == 0.5 and row.status == JobStatus.cancelled
        events = [(e.type, e.data.get("node")) for e in store.events_after(session, job.id, 0)]
    assert events[before:] == [("node_finished", "first"), ("status", None)]


class TwoSteps(Probe):
    """A quick step, then a long one during which it watches its own job's event log."""

    slug = "two-steps"
    steps: tuple[str, ...] = ("quick", "long")
    seen_during_long_step: list[tuple[str, Any]] = []

    def run(self, input_data: dict[str, Any], ctx: Any) -> dict[str, Any]:
        ctx.progress({"type": "node_started", "node": "quick"})
        ctx.progress({"type": "node_finished", "node": "quick"})
        ctx.progress({"type": "node_started", "node": "long"})
        # a watcher polling the job while the step runs
        self.seen_during_long_step = wait_for_event(self.settings, ctx.job_id,
                                                    ("node_started", "long"))
        ctx.progress({"type": "node_finished", "node": "long"})
        return {"message": "done"}


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_step_events_close_together_share_a_commit_and_still_show_while_a_step_runs(
        settings: Settings, database: str, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Events less than ``GAP_S`` apart go in together (with the outcome, for the last ones),
    yet a watcher sees a long step's start while it runs, and the log keeps the product's order."""
    # a gap no busy test machine outlasts between the flusher's write and the next event
    monkeypatch.setattr(step_writer, "GAP_S", 0.25)
    if database == "postgres":
        settings = settings.model_copy(update={"database_url": request.getfixturevalue("pg_url")})
    url = settings.effective_database_url
    product = TwoSteps(settings)
    runner, job_id = queued_job(settings, product)
    commits: list[int] = []

    def count(_conn: Any) -> None:
        commits.append(1)

    sqlalchemy_event.listen(get_engine(url), "commit", count)
    try:
        assert runner.run(job_id) == "succeeded"
    finally:
        sqlalchemy_event.remove(get_engine(url), "commit", count)

    steps = [("node_started", "quick"), ("node_finished", "quick"), ("node_started", "long")]
    assert product.seen_during_long_step[-3:] == steps
    with session_scope(url) as session:
        row = store.get_job(session, team_id=None, job_id=job_id)
        events = [(e.type, e.data.get("node")) for e in store.events_after(session, job_id, 0)]
    assert row.status == JobStatus.succeeded and row.progress == 1.0
    assert events[-5:] == [*steps, ("node_finished", "long"), ("status", None)]
    # the claim, the first three events together, the last one with the outcome
    assert len(commits) == 3


class CancelledMidway(Probe):
    """Emits a step, is cancelled while the step runs, then tries to go on."""

    slug = "cancelled-midway"

    def run(self, input_data: dict[str, Any], ctx: Any) -> dict[str, Any]:
        ctx.progress({"type": "node_started", "node": "first"})  # waits for its gap
        with session_scope(self.settings.effective_database_url) as session:
            assert store.cancel_job(session, store.get_job(session, team_id=None,
                                                           job_id=ctx.job_id))
        time.sleep(step_writer.GAP_S * 2)  # the step runs on; the flusher's write is refused
        ctx.progress({"type": "node_finished", "node": "first"})
        self.reached_second = True
        return {"message": "not written"}


def test_a_job_cancelled_while_its_events_wait_stops_at_its_next_step(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step_writer, "GAP_S", 0.25)  # the cancel lands well inside the gap
    product = CancelledMidway(settings)
    runner, job_id = queued_job(settings, product)

    assert runner.run(job_id) == "cancelled"
    assert not product.reached_second
    with session_scope(settings.effective_database_url) as session:
        row = store.get_job(session, team_id=None, job_id=job_id)
        events = [(e.type, e.data.get("status"), e.data.get("node"))
                  for e in store.events_after(session, job_id, 0)]
    assert row.status == JobStatus.cancelled and row.result is None
    # the step's start never went in: it was still waiting when the job was cancelled
    assert events == [("status", "queued", None), ("status", "running", None),
                      ("status", "cancelled", None)]
