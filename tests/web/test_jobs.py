"""Job pages over real rows: steps, calls, results for people, history, cancel, the SSE stream."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from modelyard_platform.auth import authenticate
from modelyard_platform.jobs import store
from modelyard_platform.models import JobStatus
from modelyard_registry.db import session_scope
from modelyard_registry.scores import Call
from modelyard_registry.settings import Settings

from .conftest import csrf_of

TRIAGE = {
    "category": "billing", "urgency": "high", "language": "en",
    "entities": {"order_ids": ["A-10293"], "products": [], "emails": ["dana@example.com"],
                 "amounts": [49.99]},
    "reply": "Hi Dana, we have refunded the duplicate charge.",
    "check": {"passed": True, "problems": []}, "trace": [],
}


class Jobs:
    """Builds jobs as a worker would leave them: claimed, events, calls, finished."""

    def __init__(self, settings: Settings, team_id: int) -> None:
        self.url = settings.effective_database_url
        self.team_id = team_id

    def make(self, product: str = "ticket-triage", *, status: JobStatus = JobStatus.succeeded,
             result: dict[str, Any] | None = None, nodes: tuple[str, ...] = (),
             team_id: int | None = None) -> str:
        with session_scope(self.url) as session:
            job, _ = store.create_job(session, team_id=team_id or self.team_id,
                                      product=product, input_data={"body": "hi"}, options={})
            if status == JobStatus.queued:
                return job.id
            store.claim(session, job.id, "w1", 30)
            for i, node in enumerate(nodes):
                store.add_event(session, job.id, "node_started", {"node": node})
                session.add(Call(request_id=f"{job.id}:{node}", job_id=job.id,
                                 team_id=team_id or self.team_id, node=node, kind="classify",
                                 model_name="smollm2-135m", prompt_tokens=100 + i,
                                 completion_tokens=20, latency_s=0.5, cost_usd=0.0001,
                                 outcome="accepted", reason=f"cheapest adequate for {node}"))
                session.commit()
                store.add_event(session, job.id, "node_finished",
                                {"node": node, "cost_usd": 0.0001})
            if status != JobStatus.running:
                store.finish(session, job.id, "w1", status, result=result,
                             error={"type": "boom", "message": "it broke"}
                             if status == JobStatus.failed else None)
            return job.id


@pytest.fixture
def jobs(settings: Settings, keys: dict[str, str]) -> Jobs:
    with session_scope(settings.effective_database_url) as session:
        team_id = authenticate(session, keys["user"]).team_id
    return Jobs(settings, team_id)


def test_finished_triage_job_is_shown_for_people(user_client: TestClient, jobs: Jobs) -> None:
    job_id = jobs.make(result=TRIAGE, nodes=("classify", "extract", "draft", "check"))
    page = user_client.get(f"/jobs/{job_id}")
    assert page.status_code == 200
    html = page.text
    assert re.findall(r'class="step step-(\w+)" data-step="(\w+)"', html) == [
        ("done", "classify"), ("done", "extract"), ("done", "draft"), ("done", "check")]
    assert '<span class="badge badge-cat" id="result-category">billing</span>' in html
    assert 'class="badge urgency-high" id="result-urgency">high<' in html
    assert "we have refunded the duplicate charge" in html
    assert "A-10293" in html and "dana@example.com" in html
    assert "cheapest adequate for draft" in html  # why each model was chosen
    assert html.count("<code>smollm2-135m</code>") == 4
    assert 'id="raw-json"' in html and 'data-copy="raw-json"' in html
    assert "Cancel job" not in html
    assert 'data-terminal="true"' in html


def test_summary_and_extract_results(user_client: TestClient, jobs: Jobs) -> None:
    summary = jobs.make("doc-summary", result={
        "summary": "Short.", "key_points": ["one", "two"], "chunks": 1, "reduce_levels": 0,
        "trace": []})
    html = user_client.get(f"/jobs/{summary}").text
    assert 'id="result-summary">Short.</p>' in html and "<li>two</li>" in html
    extract = jobs.make("extract", result={
        "data": {"vendor": "Acme", "total": 1250.0, "tags": ["a", "b"]}, "valid": True,
        "missing": [], "field_confidence": {"vendor": 0.9}, "trace": []})
    html = user_client.get(f"/jobs/{extract}").text
    assert "<code>vendor</code></th><td>Acme</td>" in html
    assert "<td>a, b</td>" in html and "90%" in html


def test_failed_and_running_jobs(user_client: TestClient, jobs: Jobs) -> None:
    failed = jobs.make(status=JobStatus.failed, nodes=("classify",))
    html = user_client.get(f"/jobs/{failed}").text
    assert "it broke" in html and 'data-step="extract"' in html
    assert 'class="step step-skipped" data-step="extract"' in html
    running = jobs.make(status=JobStatus.running, nodes=("classify",))
    page = user_client.get(f"/jobs/{running}")
    assert 'data-terminal="false"' in page.text and "Cancel job" in page.text
    assert 'class="step step-pending" data-step="extract"' in page.text
    live = user_client.get(f"/jobs/{running}/live")
    assert live.headers["x-job-status"] == "running"
    assert "<html" not in live.text and 'data-step="classify"' in live.text


def test_cancel_needs_the_token(user_client: TestClient, jobs: Jobs,
                                settings: Settings) -> None:
    job_id = jobs.make(status=JobStatus.running)
    token = csrf_of(user_client.get(f"/jobs/{job_id}").text)
    assert user_client.post(f"/jobs/{job_id}/cancel", data={"csrf": "x"}).status_code == 403
    response = user_client.post(f"/jobs/{job_id}/cancel", data={"csrf": token})
    assert response.status_code == 303 and response.headers["location"] == f"/jobs/{job_id}"
    with session_scope(settings.effective_database_url) as session:
        assert store.get_job(session, team_id=None, job_id=job_id).status == "cancelled"
    assert "This job was cancelled" in user_client.get(f"/jobs/{job_id}").text


def test_other_teams_jobs_are_not_found(user_client: TestClient, jobs: Jobs,
                                        settings: Settings, keys: dict[str, str]) -> None:
    with session_scope(settings.effective_database_url) as session:
        other_team = authenticate(session, keys["admin"]).team_id
    job_id = jobs.make(team_id=other_team, result=TRIAGE)
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/live", f"/jobs/{job_id}/events"):
        assert user_client.get(path).status_code == 404
    assert job_id[:8] not in user_client.get("/jobs").text


def test_event_stream_replays_and_ends(user_client: TestClient, jobs: Jobs) -> None:
    job_id = jobs.make(result=TRIAGE, nodes=("classify", "extract"))
    response = user_client.get(f"/jobs/{job_id}/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    kinds = re.findall(r"^event: (\w+)$", response.text, re.M)
    assert kinds == ["status", "node_started", "node_finished", "node_started",
                     "node_finished", "status"]
    resumed = user_client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "5"})
    assert re.findall(r"^event: (\w+)$", resumed.text, re.M) == ["status"]


def test_history_filters_and_pages(user_client: TestClient, jobs: Jobs) -> None:
    done = [jobs.make(result=TRIAGE) for _ in range(22)]
    queued = jobs.make("echo", status=JobStatus.queued)
    first = user_client.get("/jobs")
    assert first.status_code == 200
    shown = re.findall(r'<a href="/jobs/(\w+)"><code>', first.text)
    assert len(shown) == 20 and shown[0] == queued
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older
    second = user_client.get(older.group(1).replace("&amp;", "&"))
    rest = re.findall(r'<a href="/jobs/(\w+)"><code>', second.text)
    assert len(rest) == 3 and set(shown + rest) == {*done, queued}
    assert 'rel="next"' not in second.text and "Newest" in second.text
    only_queued = user_client.get("/jobs?status=queued")
    assert re.findall(r'<a href="/jobs/(\w+)"><code>', only_queued.text) == [queued]
    assert user_client.get("/jobs?status=bogus").status_code == 422
    assert user_client.get("/jobs?cursor=@@").status_code == 422
