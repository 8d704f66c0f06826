"""The route explain page renders the library's decision (the API's shape); admins only."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from modelyard_registry import catalog
from modelyard_registry.catalog import Backend, ModelCreate
from modelyard_registry.db import session_scope
from modelyard_registry.routing.explain import explain
from modelyard_registry.routing.public import DecisionPublic, ExplainRequest
from modelyard_registry.scores import Score
from modelyard_registry.settings import Settings


def test_non_admins_get_a_403(user_client: TestClient) -> None:
    assert user_client.get("/route").status_code == 403


def test_route_page_shows_every_candidate_as_the_library_decides(
    admin_client: TestClient, settings: Settings
) -> None:
    with session_scope(settings.effective_database_url) as session:
        for name, price, score in (("cheap-remote", 0.1, 0.4), ("good-remote", 2.0, 0.9)):
            catalog.add_model(session, ModelCreate(
                name=name, backend=Backend.openai_compatible, base_url="http://127.0.0.1:9/v1",
                served_name=name, price_in=price, price_out=price, capabilities=["chat"]))
            session.add(Score(model_name=name, kind="qa", metric="exact", value=score, n=20,
                              ci_low=0, ci_high=1, suite_version="t"))
        session.commit()
        body = ExplainRequest(text="Why is the sky blue?", kind="qa",
                              options={"min_quality": 0.6})
        expected = DecisionPublic.of(explain(session, settings, body.spec(), body.text))

    page = admin_client.get("/route", params={"text": "Why is the sky blue?", "kind": "qa",
                                              "min_quality": "0.6"})
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert expected.chosen == "good-remote" and "<code>good-remote</code></h2>" in text
    assert expected.reason in text
    for cand in expected.candidates:
        assert f'data-model="{cand.name}"' in text and cand.reason in text
    assert "per-kind scores" in text  # no trained predictor yet

    bad = admin_client.get("/route", params={"text": "x", "kind": "qa", "min_quality": "7"})
    assert bad.status_code == 422 and "min_quality" in bad.text
