"""A cost budget (``max_cost_ratio``) served by the trained version's cross-validated curve.

The operator says "at most 10% of always-best's cost"; the router keeps that promise on requests
it has not seen, and spends more when given more.  Without a measured curve the budget cannot be
kept knowingly and ``min_quality`` decides, as the explain output says.
"""

from __future__ import annotations

import random

import pytest
from modelyard_registry import catalog
from modelyard_registry.errors import InvalidInput
from modelyard_registry.evidence.tables import EvalOutcome
from modelyard_registry.routing.explain import explain
from modelyard_registry.routing.options import RoutingOptions
from modelyard_registry.routing.serving import ActivePredictor
from modelyard_registry.routing.training import train
from modelyard_registry.routing.tuning import CurvePoint, mix_for_budget, served_curve
from modelyard_registry.settings import Settings
from modelyard_registry.taskspec import TaskSpec
from sqlmodel import Session

from . import synthetic
from .synthetic import PRICE


def point(lam: float, cost: float, quality: float) -> CurvePoint:
    return CurvePoint(setting="served", lam=lam, floor=False, cost_ratio=cost,
                      quality_ratio=quality)


CURVE = [point(4.0, 0.05, 0.80), point(1.0, 0.10, 0.88), point(0.25, 0.40, 0.97),
         point(0.05, 0.90, 1.0)]


def test_a_budget_between_two_points_mixes_them_to_spend_it() -> None:
    mix = mix_for_budget(CURVE, 0.2)
    assert mix is not None
    assert (mix.lam_cheap, mix.lam_rich) == (1.0, 0.25)
    # expected cost lands on the target (0.9 x the budget, the margin), not under it
    spent = (1 - mix.share) * 0.10 + mix.share * 0.40
    assert spent == pytest.approx(0.18)


def test_a_budget_under_the_cheapest_point_spends_the_least_it_can() -> None:
    mix = mix_for_budget(CURVE, 0.01)
    assert mix is not None and mix.lam_cheap == mix.lam_rich == 4.0 and mix.share == 0.0
    assert mix_for_budget([], 0.5) is None


def test_too_little_evidence_measures_no_curve() -> None:
    from modelyard_registry.routing.embed import HashedNgramEmbedder

    few = synthetic.outcomes(n=20)
    assert served_curve(few, HashedNgramEmbedder(), {"method": "knn"}) == []


def test_options_reject_a_budget_outside_zero_to_one() -> None:
    for bad in (0, 1.5, -0.1):
        with pytest.raises(InvalidInput) as caught:
            RoutingOptions.parse({"max_cost_ratio": bad})
        assert caught.value.field == "options.max_cost_ratio"
    assert RoutingOptions.parse({"max_cost_ratio": 0.15}).spec("qa").max_cost_ratio == 0.15


def _catalogue_and_evidence(session: Session, n: int) -> None:
    for name, price in PRICE.items():
        per_million = price * 1000  # the synthetic per-answer prices, in the same ratios
        catalog.add_model(session, catalog.ModelCreate(
            name=name, backend=catalog.Backend.openai_compatible,
            base_url="http://127.0.0.1:9/v1", served_name=name, price_in=per_million,
            price_out=per_million, capabilities=["chat"]))
    for o in synthetic.outcomes(n=n):
        session.add(EvalOutcome(model_name=o.model, kind=o.kind, suite="qa", suite_version="t",
                                item_id=o.item_id, text=o.text, score=o.score,
                                cost_usd=o.cost_usd or 0.0))
    session.commit()


def _spend(session: Session, settings: Settings, budget: float | None) -> tuple[float, set[str]]:
    """Expected cost of 40 unseen requests routed under ``budget``, as a ratio of always-best."""
    predictor = ActivePredictor(settings, check_interval_s=0)
    rng = random.Random(99)
    spent = best = 0.0
    rules = set()
    for i in range(40):
        text = synthetic.request(rng, "math" if i % 2 else "poem")
        spec = TaskSpec.build(kind="qa", min_quality=0.5, max_output_tokens=16,
                              max_cost_ratio=budget)
        decision = explain(session, settings, spec, text, predictor=predictor)
        assert decision.chosen is not None
        spent += decision.chosen.expected_cost_usd
        best += next(v.expected_cost_usd for v in decision.candidates if v.name == "oracle-xl")
        rules.add(decision.rule)
    return spent / best, rules


def test_a_served_budget_keeps_its_promise_on_unseen_requests(
    session: Session, settings: Settings
) -> None:
    _catalogue_and_evidence(session, n=200)
    version = train(session, settings)
    assert len(version.budget_curve) >= 10
    assert {"lam", "cost_ratio", "quality_ratio"} <= set(version.budget_curve[0])

    tight, tight_rules = _spend(session, settings, 0.1)
    loose, loose_rules = _spend(session, settings, 0.9)
    assert all(r.startswith("cost budget 0.1 ") for r in tight_rules)
    assert all(r.startswith("cost budget 0.9 ") for r in loose_rules)
    # about a tenth of always-best (cheap specialists take nearly everything) ...
    assert tight <= 0.15
    # ... and a looser budget buys more of the expensive model
    assert loose > tight + 0.1


def test_without_a_curve_min_quality_decides(session: Session, settings: Settings) -> None:
    _catalogue_and_evidence(session, n=20)  # too little to measure a curve
    version = train(session, settings)
    assert version.budget_curve == []
    _, rules = _spend(session, settings, 0.1)
    assert rules == {"utility"}
