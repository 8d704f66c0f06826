"""Feedback and eval suites over the real app: the job page's good/bad buttons and the API."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from modelyard_registry.db import session_scope
from modelyard_registry.evals.store import EvalSuiteRow
from modelyard_registry.evidence import Feedback, list_feedback, load_outcomes
from modelyard_registry.routing.outcomes import OutcomeSource
from modelyard_registry.settings import Settings
from sqlmodel import select

from .conftest import csrf_of
from .test_jobs import TRIAGE, Jobs, jobs  # noqa: F401  (the fixture)


def _feedback(settings: Settings) -> list[Feedback]:
    with session_scope(settings.effective_database_url) as session:
        return list(session.exec(select(Feedback)).all())


def test_job_page_good_bad_buttons_record_and_update_feedback(
    user_client: TestClient, jobs: Jobs, settings: Settings  # noqa: F811
) -> None:
    job_id = jobs.make(result=TRIAGE, nodes=("classify", "draft"))
    html = user_client.get(f"/jobs/{job_id}").text
    assert re.findall(r'data-rate="([\w-]+)"', html) == ["classify", "draft", "job"]
    token = csrf_of(html)
    assert user_client.post(f"/jobs/{job_id}/feedback",
                            data={"csrf": "x", "score": "1"}).status_code == 403
    assert user_client.post(f"/jobs/{job_id}/feedback",
                            data={"csrf": token, "score": "7"}).status_code == 422
    good = user_client.post(f"/jobs/{job_id}/feedback",
                            data={"csrf": token, "score": "1", "node": "draft"})
    assert good.status_code == 303 and good.headers["location"] == f"/jobs/{job_id}#result"
    user_client.post(f"/jobs/{job_id}/feedback", data={"csrf": token, "score": "0",
                                                       "node": "draft"})
    [row] = _feedback(settings)
    assert (row.subject_id, row.node, row.score) == (job_id, "draft", 0.0)
    html = user_client.get(f"/jobs/{job_id}").text
    assert re.search(r'data-rate="draft".*?value="0" class="btn btn-sm is-on"', html, re.S)
    with session_scope(settings.effective_database_url) as session:
        graded = [o for o in load_outcomes(session) if o.source is OutcomeSource.feedback]
    assert graded == []  # no request text was kept for these hand-made calls: nothing to learn
    with session_scope(settings.effective_database_url) as session:
        assert [f.models for f in list_feedback(session)] == [["smollm2-135m"]]


def test_other_teams_job_feedback_is_404(
    user_client: TestClient, jobs: Jobs, settings: Settings, keys: dict[str, str]  # noqa: F811
) -> None:
    from modelyard_platform.auth import authenticate

    with session_scope(settings.effective_database_url) as session:
        other = authenticate(session, keys["admin"]).team_id
    theirs = jobs.make(team_id=other, result=TRIAGE, nodes=("classify",))
    mine = jobs.make(result=TRIAGE, nodes=("classify",))
    token = csrf_of(user_client.get(f"/jobs/{mine}").text)
    assert user_client.post(f"/jobs/{theirs}/feedback",
                            data={"csrf": token, "score": "1"}).status_code == 404
    api = {"Authorization": f"Bearer {keys['user']}"}
    for body in ({"job_id": theirs, "score": 1}, {"job_id": "nope", "score": 1}):
        response = user_client.post("/v1/feedback", json=body, headers=api)
        assert response.status_code == 404
        assert response.json()["error"]["field"] == "job_id"
        assert response.json()["error"]["message"] == f"unknown job {body['job_id']!r}"
    assert _feedback(settings) == []


def test_api_feedback_on_a_job_node_is_idempotent_and_validated(
    client: TestClient, jobs: Jobs, keys: dict[str, str], settings: Settings  # noqa: F811
) -> None:
    job_id = jobs.make(result=TRIAGE, nodes=("classify",))
    api = {"Authorization": f"Bearer {keys['user']}"}
    first = client.post("/v1/feedback", headers=api,
                        json={"job_id": job_id, "node": "classify", "score": 0.5})
    assert first.status_code == 201, first.text
    again = client.post("/v1/feedback", headers=api,
                        json={"job_id": job_id, "node": "classify", "score": 1, "comment": "ok"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["score"] == 1 and again.json()["models"] == ["smollm2-135m"]
    for body, field in (({"job_id": job_id, "score": 1.5}, "score"),
                        ({"score": 1}, "request_id"),
                        ({"job_id": job_id, "request_id": "x", "score": 1}, "job_id"),
                        ({"job_id": job_id, "node": "draft", "score": 1}, "node"),
                        ({"job_id": job_id, "score": 1, "mood": "happy"}, "mood")):
        response = client.post("/v1/feedback", headers=api, json=body)
        assert response.status_code in (404, 422), response.text
        assert response.json()["error"]["field"] == field
    listed = client.get("/v1/feedback", headers=api).json()
    assert [(f["job_id"], f["node"], f["comment"]) for f in listed] == [(job_id, "classify", "ok")]
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    assert client.get("/v1/feedback", headers=admin).json() == []  # another team's


def test_api_evals_list_for_teams_add_for_admins(
    client: TestClient, keys: dict[str, str], settings: Settings
) -> None:
    user = {"Authorization": f"Bearer {keys['user']}"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    names = [s["name"] for s in client.get("/v1/evals", headers=user).json()]
    assert names == ["classify", "extract", "summarize", "qa", "tools"]
    suite: dict[str, Any] = {"name": "refunds", "kind": "support", "metric": "label",
             "config": {"labels": ["refund", "other"]},
             "items": [{"id": "1", "input": "Money back please", "expected": "refund"},
                       {"id": "2", "input": "Hello", "expected": "other"}]}
    assert client.post("/v1/evals", headers=user, json=suite).status_code == 403
    bad = dict(suite, items=[suite["items"][0], {"id": "2", "input": "Hi", "expected": "maybe"}])
    response = client.post("/v1/evals", headers=admin, json=bad)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "items.1.expected"
    response = client.post("/v1/evals", headers=admin, json=dict(suite, metric="bleu"))
    assert response.status_code == 422 and response.json()["error"]["field"] == "metric"
    response = client.post("/v1/evals", headers=admin, json=dict(suite, kind="Support!"))
    assert response.status_code == 422 and response.json()["error"]["field"] == "kind"
    with session_scope(settings.effective_database_url) as session:
        assert session.exec(select(EvalSuiteRow)).all() == []
    created = client.post("/v1/evals", headers=admin, json=suite)
    assert created.status_code == 201 and created.json()["n_items"] == 2
    same = client.post("/v1/evals", headers=admin, json=suite)
    assert same.status_code == 200 and same.json()["version"] == created.json()["version"]
    listed = {s["name"]: s for s in client.get("/v1/evals", headers=user).json()}
    assert listed["refunds"]["kind"] == "support" and listed["refunds"]["builtin"] is False
    assert listed["refunds"]["labels"] == ["refund", "other"]
