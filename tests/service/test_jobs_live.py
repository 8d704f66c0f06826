"""Jobs through the real stack: API process -> Redis -> Celery worker process -> database."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from modelyard_platform.jobs import store
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings

from .conftest import Stack, StackFactory

pytestmark = pytest.mark.slow


def read_sse(stack: Stack, job_id: str, last_event_id: int | None = None
             ) -> list[dict[str, Any]]:
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id else {}
    events = []
    with stack.client() as http, http.stream("GET", f"/v1/jobs/{job_id}/events",
                                             headers=headers, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def submit(http: httpx.Client, product: str, data: dict[str, Any], **options: Any) -> str:
    r = http.post(f"/v1/products/{product}/jobs", json={"input": data, "options": options})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_echo_job_runs_and_streams_its_events(stack_factory: StackFactory) -> None:
    stack = stack_factory(with_model=False)
    with stack.client() as http:
        job_id = submit(http, "echo", {"message": "hello"})
    events = read_sse(stack, job_id)  # blocks until the terminal event
    types = [(e["type"], e.get("status") or e.get("node")) for e in events]
    assert types == [("status", "queued"), ("status", "running"), ("node_started", "echo"),
                     ("node_finished", "echo"), ("status", "succeeded")]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    replay = read_sse(stack, job_id, last_event_id=3)
    assert [e["seq"] for e in replay] == [4, 5]
    job = stack.wait_job(job_id)
    assert job["result"] == {"message": "hello"} and job["progress"] == 1.0
    assert job["cost_usd"] == 0 and job["calls"] == []


def test_generate_job_records_calls_cost_and_usage(stack_factory: StackFactory) -> None:
    stack = stack_factory()
    with stack.client() as http:
        job_id = submit(http, "generate", {"prompt": "Name a colour.", "max_tokens": 16})
        job = stack.wait_job(job_id)
        assert job["status"] == "succeeded", job["error"]
        result = job["result"]
        assert result["model"] == "smollm2-135m" and result["text"].strip()
        assert 0 < result["completion_tokens"] <= 16
        [call] = job["calls"]
        assert call["model"] == "smollm2-135m" and call["node"] == "generate"
        assert call["outcome"] == "accepted" and call["reason"]
        assert call["cost_usd"] > 0
        assert job["cost_usd"] == pytest.approx(call["cost_usd"])
        usage = http.get("/v1/usage", params={"group_by": "model"}).json()
        assert usage["groups"][0]["key"] == "smollm2-135m"
        assert usage["total"]["cost_usd"] == pytest.approx(job["cost_usd"])
        assert usage["total"]["completion_tokens"] == result["completion_tokens"]
        by_product = http.get("/v1/usage", params={"group_by": "product"}).json()
        assert [g["key"] for g in by_product["groups"]] == ["generate"]
        by_day = http.get("/v1/usage", params={"group_by": "day"}).json()
        assert len(by_day["groups"]) == 1
        metrics = http.get("/metrics").text
        assert 'modelyard_jobs{status="succeeded"} 1.0' in metrics
        assert 'modelyard_model_calls_total{model="smollm2-135m",outcome="accepted"} 1.0' \
            in metrics
        other = stack.key("someone-else")
    with stack.client(other) as http:
        assert http.get("/v1/usage").json()["total"]["calls"] == 0


@pytest.mark.postgres
def test_jobs_on_postgres(stack_factory: StackFactory, pg_url: str) -> None:
    stack = stack_factory(database_url=pg_url)
    with stack.client() as http:
        echo = submit(http, "echo", {"message": "pg"})
        gen = submit(http, "generate", {"prompt": "Say yes.", "max_tokens": 8})
    assert stack.wait_job(echo)["result"] == {"message": "pg"}
    job = stack.wait_job(gen)
    assert job["status"] == "succeeded", job["error"]
    assert len(job["calls"]) == 1 and job["cost_usd"] > 0


def test_a_job_the_broker_never_got_is_enqueued_by_the_reconciler(
    stack_factory: StackFactory,
) -> None:
    """The row is the truth: a job stored while the broker was away still runs."""
    stack = stack_factory(with_model=False)
    settings = Settings(home=stack.home)
    with session_scope(settings.effective_database_url) as session:
        team_id = 1
        job, _ = store.create_job(session, team_id=team_id, product="echo",
                                  input_data={"message": "late"}, options={})
    job_data = stack.wait_job(job.id, timeout_s=60)
    assert job_data["status"] == "succeeded" and job_data["result"] == {"message": "late"}


def test_worker_killed_mid_graph_resumes_and_finishes_exactly_once(
    stack_factory: StackFactory,
) -> None:
    """SIGKILL the worker after the first node; a new worker resumes from the checkpoint."""
    stack = stack_factory()
    ticket = {"subject": "Refund for order 88231",
              "body": "Hi, my order 88231 of the Aero kettle arrived broken. "
                      "Please refund me. Jo (jo@example.com)"}
    with stack.client() as http:
        job_id = submit(http, "ticket-triage", ticket)
        deadline = time.monotonic() + 180
        finished: list[str] = []
        while time.monotonic() < deadline and not finished:
            events = read_events(stack, job_id)
            finished = [e["node"] for e in events if e["type"] == "node_finished"]
            time.sleep(0.2)
        assert finished, "the first node never finished"
        stack.kill_workers()
        first_node = finished[0]
        before = {c["node"] for c in http.get(f"/v1/jobs/{job_id}").json()["calls"]}
        stack.start_worker()
        job = stack.wait_job(job_id, timeout_s=300)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2
    events = read_events(stack, job_id)
    assert sum(1 for e in events if e.get("status") == "succeeded") == 1
    assert any(e["type"] == "resumed" for e in events)
    started = [e["node"] for e in events if e["type"] == "node_started"]
    assert started.count(first_node) == 1, started  # not re-run after the kill
    accepted = [c for c in job["calls"] if c["outcome"] == "accepted"]
    assert sum(1 for c in accepted if c["node"] == first_node) == 1  # not billed twice
    assert first_node in before
    assert job["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in job["calls"]))
    assert set(job["result"]) >= {"category", "urgency", "entities", "reply", "trace"}


def read_events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    settings = Settings(home=stack.home)
    with session_scope(settings.effective_database_url) as session:
        rows = store.events_after(session, job_id, 0)
        return [{"type": e.type, **e.data} for e in rows]


def test_cancel_stops_a_running_job(stack_factory: StackFactory) -> None:
    stack = stack_factory()
    with stack.client() as http:
        job_id = submit(http, "ticket-triage", {"subject": "Login fails",
                                                "body": "I cannot log in since Monday."})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(e["type"] == "node_started" for e in read_events(stack, job_id)):
                break
            time.sleep(0.1)
        r = http.post(f"/v1/jobs/{job_id}/cancel")
        assert r.json()["status"] == "cancelled"
        time.sleep(8)  # long enough for the worker to reach its next node
        job = http.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "cancelled" and job["result"] is None
    started = [e["node"] for e in read_events(stack, job_id) if e["type"] == "node_started"]
    assert len(started) <= 2, started  # the node running at cancel time, no more
