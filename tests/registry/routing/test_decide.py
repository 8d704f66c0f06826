"""``decide`` with per-request predictions: adequacy by predicted probability where the predictor
has evidence, the per-kind score without, the rule's order, and the explanation of each."""

from __future__ import annotations

import pytest
from modelyard_registry.routing.candidates import Candidate, MachineLimits
from modelyard_registry.routing.decide import DecisionRule, decide, policy_rule
from modelyard_registry.routing.outcomes import Neighbour, Prediction
from modelyard_registry.taskspec import TaskSpec

MB = 2**20
LIMITS = MachineLimits(ram_budget_bytes=1024 * MB, n_ctx=4096, machine_cost_per_hour=0.36)


def remote(name: str, price: float, score: float | None) -> Candidate:
    return Candidate(
        name=name, backend="openai_compatible", capabilities=frozenset({"chat"}),
        context_length=32768, price_in=price, price_out=price, tokens_per_s=None,
        health="healthy", enabled=True, ram_bytes=None,
        scores={} if score is None else {"qa": score},
    )


# Per kind, the cheap model looks poor and the dear one good; for *this* request the evidence
# says the opposite of the cheap model's reputation.
CATALOGUE = [remote("cheap", 0.1, 0.40), remote("mid", 1.0, 0.75), remote("dear", 10.0, 0.95)]
NEAR = (Neighbour(item_id="qa:7", text="capital of France?", similarity=0.93, score=1.0),)


def pred(model: str, p: float, evidence: float = 12.0) -> Prediction:
    return Prediction(model=model, p=p, evidence=evidence, prior=None, neighbours=NEAR)


def spec(min_quality: float, **kw: object) -> TaskSpec:
    return TaskSpec.build(kind="qa", min_quality=min_quality, max_output_tokens=50, **kw)


def test_without_predictions_the_per_kind_score_decides() -> None:
    d = decide(spec(0.7), 100, CATALOGUE, LIMITS)
    assert d.basis == "score" and d.chosen is not None and d.chosen.name == "mid"
    by = {v.name: v for v in d.candidates}
    assert by["cheap"].status == "rejected" and "quality 0.40 < 0.70" in by["cheap"].reason
    assert by["cheap"].prediction is None and by["cheap"].score == 0.40


def test_with_predictions_adequacy_is_the_predicted_probability() -> None:
    predictions = {"cheap": pred("cheap", 0.91), "mid": pred("mid", 0.55),
                   "dear": pred("dear", 0.97)}
    d = decide(spec(0.7), 100, CATALOGUE, LIMITS, predictions)
    assert d.basis == "prediction" and d.threshold == 0.7
    assert d.chosen is not None and d.chosen.name == "cheap"  # per kind it would be rejected
    by = {v.name: v for v in d.candidates}
    assert by["mid"].status == "rejected"  # per kind it would have been chosen
    assert "predicted quality 0.55 < 0.70" in by["mid"].reason
    assert "evidence 12.0" in by["mid"].reason
    assert "predicted quality 0.91 >= 0.70" in d.chosen.reason
    # the explanation carries both figures, the evidence and the nearest examples
    shown = by["cheap"].to_dict()
    assert shown["predicted_quality"] == 0.91 and shown["score"] == 0.40
    assert shown["evidence"] == 12.0 and shown["neighbours"][0]["item_id"] == "qa:7"
    assert by["mid"].to_dict()["predicted_quality"] == 0.55  # rejected ones keep theirs too
    assert [v.name for v in d.ranked()] == ["cheap", "dear"]


def test_a_model_the_predictor_does_not_know_falls_back_to_its_score() -> None:
    d = decide(spec(0.7), 100, CATALOGUE, LIMITS, {"cheap": pred("cheap", 0.2)})
    by = {v.name: v for v in d.candidates}
    assert by["cheap"].status == "rejected"
    assert d.chosen is not None and d.chosen.name == "mid" and d.chosen.quality == 0.75


def test_the_rule_maps_min_quality_to_its_threshold() -> None:
    predictions = {"cheap": pred("cheap", 0.62), "mid": pred("mid", 0.8),
                   "dear": pred("dear", 0.9)}
    strict = decide(spec(0.7), 100, CATALOGUE, LIMITS, predictions)
    assert strict.chosen is not None and strict.chosen.name == "mid"
    lenient = decide(spec(0.7), 100, CATALOGUE, LIMITS, predictions,
                     DecisionRule(name="calibrated", threshold=0.6))
    assert lenient.chosen is not None and lenient.chosen.name == "cheap"
    assert lenient.rule == "calibrated" and lenient.threshold == 0.6


def test_utility_rule_orders_by_quality_minus_relative_cost() -> None:
    predictions = {"cheap": pred("cheap", 0.5), "mid": pred("mid", 0.9),
                   "dear": pred("dear", 0.95)}
    rule = DecisionRule(name="utility", threshold=0.0, lam=0.2)
    d = decide(spec(0.0), 100, CATALOGUE, LIMITS, predictions, rule)
    # utilities: cheap 0.5 - 0.2*0.01 ~ 0.498, mid 0.9 - 0.02 = 0.88, dear 0.95 - 0.2 = 0.75
    assert [v.name for v in d.ranked()] == ["mid", "dear", "cheap"]
    assert d.chosen is not None and d.chosen.name == "mid" and "utility" in d.chosen.reason
    assert "ranked below mid by utility" in {v.name: v for v in d.candidates}["dear"].reason


def test_pinned_skips_the_predicted_bar_and_best_effort_takes_the_best_prediction() -> None:
    low = {"cheap": pred("cheap", 0.1), "mid": pred("mid", 0.3), "dear": pred("dear", 0.4)}
    pinned = decide(spec(0.9, pinned_model="cheap"), 100, CATALOGUE, LIMITS, low)
    assert pinned.chosen is not None and pinned.chosen.name == "cheap"
    best = decide(spec(0.9, best_effort=True), 100, CATALOGUE, LIMITS, low)
    assert best.best_effort and best.chosen is not None and best.chosen.name == "dear"
    nothing = decide(spec(0.9), 100, CATALOGUE, LIMITS, low)
    assert nothing.chosen is None and "predicted quality 0.40 < 0.90" in nothing.reason
    with pytest.raises(Exception, match="predicted quality"):
        nothing.require()


def test_policy_rule_maps_min_quality_as_the_replay_measured() -> None:
    assert policy_rule(0.0) == DecisionRule(name="threshold", threshold=0.0)
    assert policy_rule(0.99) == DecisionRule(name="threshold", threshold=0.99)
    mid = policy_rule(0.8)
    assert mid.name == "utility" and mid.threshold == 0.0
    assert mid.lam == pytest.approx(0.25)


def test_an_embeddings_only_model_is_never_routed_text() -> None:
    embedder = Candidate(
        name="embedder", backend="openai_compatible", capabilities=frozenset({"embeddings"}),
        context_length=8192, price_in=0.0, price_out=0.0, tokens_per_s=None, health="healthy",
        enabled=True, ram_bytes=None, scores={"qa": 1.0},
    )
    d = decide(spec(0.5, best_effort=True), 100, [embedder, *CATALOGUE], LIMITS)
    by = {v.name: v for v in d.candidates}
    assert by["embedder"].status == "rejected" and "embeddings only" in by["embedder"].reason
    assert d.chosen is not None and d.chosen.name == "mid"
