"""Savings compare like with like: the same tokens, priced the same way, on the model that ran and
on the priciest adequate model. Pure arithmetic over hand-built rows, then the API route on a
real SQLite catalogue (team-scoped; admins may see every team)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from modelyard_platform.api import create_app
from modelyard_platform.auth import create_key
from modelyard_platform.models import Team
from modelyard_platform.savings import compute
from modelyard_registry import catalog
from modelyard_registry.catalog import Backend, ModelCreate
from modelyard_registry.db import session_scope
from modelyard_registry.routing.candidates import Candidate, MachineLimits, expected_cost
from modelyard_registry.scores import Call, Score
from modelyard_registry.settings import Settings
from sqlmodel import select

LIMITS = MachineLimits(ram_budget_bytes=2**30, n_ctx=4096, machine_cost_per_hour=3.6,
                       unmeasured_tokens_per_s=10.0, prefill_factor=8.0)


def model(name: str, *, local: bool = False, price_in: float = 0.0, price_out: float = 0.0,
          tps: float | None = None, prefill: float | None = None, enabled: bool = True,
          health: str = "healthy", scores: dict[str, float] | None = None) -> Candidate:
    return Candidate(
        name=name, backend="llama_cpp" if local else "openai_compatible",
        capabilities=frozenset({"chat"}), context_length=4096, price_in=price_in,
        price_out=price_out, tokens_per_s=tps, health=health, enabled=enabled, ram_bytes=None,
        scores=scores or {}, prefill_tokens_per_s=prefill,
    )


def call(model_name: str, day: int, cost: float, prompt: int = 1000, completion: int = 100,
         kind: str | None = None) -> Call:
    return Call(request_id="r", model_name=model_name, prompt_tokens=prompt,
                completion_tokens=completion, cost_usd=cost, outcome="accepted", kind=kind,
                created_at=datetime(2025, 3, day, 12, tzinfo=UTC))


def test_one_model_saves_exactly_nothing_whatever_the_bill() -> None:
    # The bills (measured wall time) differ from the estimate on purpose: with one model the
    # comparison must still be like with like, so the saving is exactly zero.
    only = [model("smol", local=True, tps=120.0, prefill=900.0)]
    calls = [call("smol", 1, 0.5), call("smol", 1, 0.0), call("smol", 2, 3e-6, 40, 7)]
    result = compute(calls, only, LIMITS, date(2025, 3, 1), date(2025, 3, 2))
    assert result.saved_usd == 0.0 and result.saved_share == 0.0
    assert all(d.saved_usd == 0.0 for d in result.days)
    assert result.billed_usd == pytest.approx(0.500003)
    assert result.actual_usd == result.baseline_usd > 0


def test_both_sides_are_priced_from_measured_rates() -> None:
    small = model("small", local=True, tps=500.0, prefill=4000.0)
    big = model("big", price_in=2.0, price_out=10.0)
    models = [small, big, model("off", price_in=100.0, enabled=False),
              model("sick", price_in=100.0, health="unhealthy")]
    calls = [call("small", 1, 0.9), call("small", 1, 0.9), call("big", 3, 0.003)]
    result = compute(calls, models, LIMITS, date(2025, 3, 1), date(2025, 3, 3))
    first, empty, third = result.days
    # small: 1000/4000 + 100/500 = 0.45 s at $3.6/h = $0.00045 (not the $0.9 billed)
    assert first.actual_usd == pytest.approx(2 * expected_cost(small, 1000, 100, LIMITS))
    assert first.actual_usd == pytest.approx(0.0009)
    assert first.baseline_usd == pytest.approx(2 * 0.003) and first.billed_usd == 1.8
    assert empty.calls == 0 and empty.baseline_usd == 0
    assert third.saved_usd == 0.0  # already on the priciest model
    assert result.baseline_model == "big"
    assert [(s.model, s.calls) for s in result.calls_per_model] == [("small", 2), ("big", 1)]


def test_baseline_is_the_priciest_model_scored_for_the_kind() -> None:
    models = [model("cheap", price_in=1.0, scores={"classify": 0.9}),
              model("pricey", price_in=50.0, scores={"summarize": 0.9})]
    result = compute([call("cheap", 1, 0.001, kind="classify")], models, LIMITS,
                     date(2025, 3, 1), date(2025, 3, 1))
    assert result.saved_usd == 0.0 and result.baseline_model == "cheap"


def test_a_model_gone_from_the_catalogue_is_priced_at_its_bill() -> None:
    result = compute([call("gone", 1, 0.5)], [model("cheap", price_in=0.01)], LIMITS,
                     date(2025, 3, 1), date(2025, 3, 1))
    assert result.days[0].actual_usd == result.days[0].baseline_usd == pytest.approx(0.5)
    assert compute([], [], LIMITS, date(2025, 3, 1), date(2025, 3, 1)).saved_share == 0.0


@pytest.fixture
def api(settings: Settings) -> tuple[TestClient, dict[str, str]]:
    """The API on a catalogue with two measured models and calls from two teams."""
    with session_scope(settings.effective_database_url) as session:
        admin, _ = create_key(session, team="ops", admin=True)
        user, _ = create_key(session, team="web")
        teams = {t.name: t.id for t in session.exec(select(Team))}
        catalog.add_model(session, ModelCreate(
            name="tiny", backend=Backend.llama_cpp, gguf_path="/m/tiny.gguf",
            capabilities=["chat"]))
        catalog.add_model(session, ModelCreate(
            name="big", backend=Backend.openai_compatible, base_url="http://127.0.0.1:9/v1",
            served_name="big", price_in=2.0, price_out=8.0, capabilities=["chat"]))
        session.add(Score(model_name="tiny", kind="classify", suite_version="1",
                          metric="accuracy", value=0.8, ci_low=0.7, ci_high=0.9, n=40,
                          tokens_per_s=50.0, latency_s=1.0, prompt_tokens_mean=200.0,
                          completion_tokens_mean=6.0))
        now = catalog.utcnow()
        for team, name in (("web", "tiny"), ("web", "big"), ("ops", "tiny")):
            session.add(Call(request_id="r", model_name=name, prompt_tokens=1000,
                             completion_tokens=250, cost_usd=0.01, outcome="accepted",
                             team_id=teams[team], created_at=now - timedelta(hours=1)))
        session.commit()
    return TestClient(create_app(settings)), {"admin": admin, "user": user}


def test_savings_route_is_team_scoped(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    mine = client.get("/v1/usage/savings", headers={"Authorization": f"Bearer {keys['user']}"})
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["calls"] == 2 and body["baseline_model"] == "big"
    assert body["billed_usd"] == pytest.approx(0.02)
    assert body["baseline_usd"] == pytest.approx(2 * (0.002 + 0.002))
    assert 0 < body["saved_usd"] < body["baseline_usd"]
    assert {s["model"] for s in body["calls_per_model"]} == {"tiny", "big"}
    denied = client.get("/v1/usage/savings?all_teams=true",
                        headers={"Authorization": f"Bearer {keys['user']}"})
    assert denied.status_code == 403 and denied.json()["error"]["field"] == "all_teams"
    every = client.get("/v1/usage/savings?all_teams=true",
                       headers={"Authorization": f"Bearer {keys['admin']}"})
    assert every.status_code == 200 and every.json()["calls"] == 3
    assert every.json()["team_id"] is None
    bad = client.get("/v1/usage/savings?from=yesterday",
                     headers={"Authorization": f"Bearer {keys['user']}"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "from"


def test_models_endpoint_shows_measured_speed_and_evaluation(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = api
    listed = client.get("/v1/models", headers={"Authorization": f"Bearer {keys['user']}"})
    assert listed.status_code == 200
    models = {m["id"]: m for m in listed.json()["data"]}
    tiny, big = models["tiny"], models["big"]
    assert tiny["evaluation"] == "full" and tiny["decode_tokens_per_s"] == 50.0
    assert tiny["prompt_tokens_per_s"] == pytest.approx(200 / 0.9)  # 1 s less 5 tokens at 50/s
    assert tiny["price_out_derived"] == pytest.approx(0.10 / 3600 * 1_000_000 / 50)
    assert big["evaluation"] == "unmeasured" and big["price_out_derived"] is None
