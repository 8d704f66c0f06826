"""Feedback on a real chat call, found by the completion's ``id``, on PostgreSQL."""

from __future__ import annotations

import json

import pytest
from modelyard_registry.db import session_scope
from modelyard_registry.evidence import load_outcomes
from modelyard_registry.routing.outcomes import OutcomeSource

from .conftest import StackFactory, yard

pytestmark = pytest.mark.slow


def test_feedback_by_chat_completion_id_is_scoped_idempotent_and_becomes_evidence(
    stack_factory: StackFactory, pg_url: str
) -> None:
    stack = stack_factory(database_url=pg_url, workers=0)
    mine, theirs = stack.key("web"), stack.key("other")
    with stack.client(mine) as http:
        answer = http.post("/v1/chat/completions", json={
            "model": "smollm2-135m", "max_tokens": 4,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Say hello."}]})
        assert answer.status_code == 200, answer.text
        request_id = answer.json()["id"]
        first = http.post("/v1/feedback", json={"request_id": request_id, "score": 0})
        assert first.status_code == 201, first.text
        assert first.json()["models"] == ["smollm2-135m"]
        again = http.post("/v1/feedback", json={"request_id": request_id, "score": 0.2,
                                                "comment": "too short"})
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    with stack.client(theirs) as http:
        other = http.post("/v1/feedback", json={"request_id": request_id, "score": 1})
        unknown = http.post("/v1/feedback", json={"request_id": "chatcmpl-nope", "score": 1})
    assert other.status_code == unknown.status_code == 404
    assert other.json()["error"]["type"] == unknown.json()["error"]["type"] == "not_found"
    assert other.json()["error"]["message"] == f"unknown request {request_id!r}"

    with session_scope(pg_url) as session:
        [outcome] = [o for o in load_outcomes(session) if o.item_id == request_id]
        session.get_bind().dispose()  # type: ignore[union-attr]
    assert outcome.source is OutcomeSource.feedback and outcome.score == 0.2
    assert outcome.text == "Say hello." and outcome.model == "smollm2-135m"
    listed = json.loads(yard(stack.env, "feedback", "list", "--json"))
    assert [(f["request_id"], f["comment"]) for f in listed] == [(request_id, "too short")]
