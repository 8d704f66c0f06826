"""Routing over HTTP: ``POST /v1/route/explain`` (shape, auth, bad input), `yard route train`
switching a live API to per-request predictions, ``POST /v1/embeddings`` through the openai SDK,
and a job's routing options reaching the decision its Call records."""

from __future__ import annotations

import json

import numpy as np
import openai
import pytest
from modelyard_registry import catalog
from modelyard_registry.db import session_scope
from modelyard_registry.embeddings import embed
from modelyard_registry.evidence.tables import EvalOutcome
from modelyard_registry.scores import Score
from modelyard_registry.settings import Settings

from .conftest import StackFactory, yard

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"


def test_explain_train_and_routed_chat(stack_factory: StackFactory) -> None:
    stack = stack_factory(workers=0, env={"MODELYARD_ROUTE_PREDICTOR_CHECK_S": "0"})
    body = {"text": "What is the capital of Peru?", "kind": "qa", "max_tokens": 8,
            "options": {"min_quality": 0.5}}
    with stack.client() as http:
        assert http.post("/v1/route/explain", json=body,
                         headers={"Authorization": ""}).status_code == 401
        bad = http.post("/v1/route/explain", json={**body, "kind": "Not A Kind!"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "kind"
        bad = http.post("/v1/route/explain", json={**body, "options": {"min_quality": 3}})
        assert bad.status_code == 422 and "min_quality" in bad.json()["error"]["field"]

        before = http.post("/v1/route/explain", json=body).json()
        assert before["basis"] == "score" and before["predictor_version"] is None
        assert before["chosen"] == MODEL and before["best_effort"]  # no score yet
        (cand,) = before["candidates"]
        assert cand["predicted_quality"] is None and cand["score"] is None
        assert cand["expected_cost_usd"] > 0 and cand["neighbours"] == []

    settings = Settings(home=stack.home)
    with session_scope(settings.effective_database_url) as session:
        for n, country in enumerate(["France", "Spain", "Chile", "Japan", "Kenya", "Norway"]):
            session.add(EvalOutcome(model_name=MODEL, kind="qa", suite="qa", suite_version="t",
                                    item_id=str(n), text=f"What is the capital of {country}?",
                                    score=1.0 if n % 3 else 0.0))
        session.commit()
    trained = json.loads(yard(stack.env, "route", "train", "--json"))
    assert trained["outcomes"] == 6 and trained["kinds"] == ["qa"]

    with stack.client() as http:
        after = http.post("/v1/route/explain", json=body).json()
        assert after["basis"] == "prediction" and after["predictor_version"] == trained["version"]
        (cand,) = after["candidates"]
        assert 0.0 <= cand["predicted_quality"] <= 1.0 and cand["evidence"] > 0
        assert cand["neighbours"] and cand["neighbours"][0]["text"].startswith("What is the")

        chat = http.post("/v1/chat/completions", json={
            "model": "auto", "messages": [{"role": "user", "content": body["text"]}],
            "max_tokens": 4}, headers={"x-modelyard-kind": "qa", "x-modelyard-min-quality": "0"})
        assert chat.status_code == 200, chat.text
        assert "predicted quality" in chat.json()["modelyard"]["reason"]

        # A cost budget needs a measured curve; six outcomes of one model measure none, so
        # min_quality decides and the decision says which rule ran.
        budgeted = http.post("/v1/route/explain",
                             json={**body, "options": {"min_quality": 0.5,
                                                       "max_cost_ratio": 0.2}}).json()
        assert budgeted["rule"] == "utility"
        bad = http.post("/v1/chat/completions", json={
            "model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
            headers={"x-modelyard-max-cost-ratio": "1.5"})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "x-modelyard-max-cost-ratio"


def test_embeddings_through_the_openai_sdk(stack_factory: StackFactory,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    stack = stack_factory(workers=0, with_model=False)
    client = openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.admin_key,
                           max_retries=0)
    texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Quarterly tax filing"]
    result = client.embeddings.create(model="modelyard-embed", input=texts)  # base64 on the wire
    vectors = np.array([d.embedding for d in result.data])
    assert result.model == "modelyard-embed" and vectors.shape[0] == 3 and vectors.shape[1] > 8
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2]  # cats are closer to kittens than to taxes
    assert result.usage.prompt_tokens > 0
    floats = client.embeddings.create(model="modelyard-route-embed", input="hello",
                                      encoding_format="float")
    assert len(floats.data) == 1 and len(floats.data[0].embedding) > 8

    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-embedder", input="x")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key="wrong",
                      max_retries=0).embeddings.create(model="modelyard-embed", input="x")

    # A registered remote embedding model is served through its server: here, this same API.
    settings = Settings(home=stack.home)
    monkeypatch.setenv("MODELYARD_SECRET_RELAY_KEY", stack.admin_key)
    with session_scope(settings.effective_database_url) as session:
        catalog.add_model(session, catalog.ModelCreate(
            name="relay-embed", backend=catalog.Backend.openai_compatible,
            base_url=f"{stack.base_url}/v1", served_name="modelyard-embed",
            api_key_env="MODELYARD_SECRET_RELAY_KEY", capabilities=["embeddings"]))
        relayed = embed(session, settings, "relay-embed", texts[:1])
    assert np.allclose(relayed.vectors[0], vectors[0], atol=1e-5)


def test_job_options_reach_the_recorded_decision(stack_factory: StackFactory) -> None:
    stack = stack_factory(workers=1)
    settings = Settings(home=stack.home)
    with session_scope(settings.effective_database_url) as session:
        session.add(Score(model_name=MODEL, kind="qa", metric="exact", value=0.8, n=20,
                          ci_low=0.6, ci_high=0.9, suite_version="t"))
        session.commit()
    with stack.client() as http:
        job = http.post("/v1/products/generate/jobs", json={
            "input": {"prompt": "Name a colour.", "max_tokens": 4, "kind": "qa"},
            "options": {"min_quality": 0.37, "best_effort": False}}).json()
        assert job["options"] == {"min_quality": 0.37, "best_effort": False}
        done = stack.wait_job(job["id"])
        assert done["status"] == "succeeded", done["error"]
        # 0.80 over 20 items is judged as the low end of its interval, 0.58
        assert "quality 0.58 >= 0.37" in done["calls"][0]["reason"]

        strict = http.post("/v1/products/generate/jobs", json={
            "input": {"prompt": "Name a colour.", "max_tokens": 4, "kind": "qa"},
            "options": {"min_quality": 0.95, "best_effort": False}}).json()
        failed = stack.wait_job(strict["id"])
        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "no_adequate_model"
        assert "0.58 < 0.95" in failed["error"]["message"]
