"""Choosing a predictor setting and a utility-rule lambda for a cost budget by cross-validation
inside the training outcomes (``routing.tuning``)."""

from __future__ import annotations

import pytest
from modelyard_registry.errors import InvalidInput
from modelyard_registry.routing.embed import HashedNgramEmbedder
from modelyard_registry.routing.tuning import (
    CurvePoint,
    Setting,
    cv_curve,
    nested,
    pick,
    pick_mix,
)

from .synthetic import outcomes

LEARNED = Setting("knn", HashedNgramEmbedder(), {"method": "knn"})
PER_KIND = Setting("per-kind", HashedNgramEmbedder(),
                   {"method": "knn", "adapt": False, "prior_strength": 1e6})
LAMBDAS = (2.0, 1.0, 0.5, 0.25, 0.1, 0.05)


def test_the_pick_stays_under_the_budget_and_reads_the_request() -> None:
    rows = outcomes(120)
    learned = cv_curve(rows, LEARNED, baseline="oracle-xl", lambdas=LAMBDAS)
    per_kind = cv_curve(rows, PER_KIND, baseline="oracle-xl", lambdas=LAMBDAS)
    assert {(p.lam, p.floor) for p in learned} == {(lam, f) for lam in LAMBDAS
                                                   for f in (False, True)}
    budget = 0.3
    best = pick(learned, budget)
    assert best is not None and best.cost_ratio <= 0.85 * budget
    # only per-request routing sends each request type to its cheap specialist
    assert best.quality_ratio >= 0.85
    rival = pick(per_kind, budget)
    assert rival is None or rival.quality_ratio < best.quality_ratio - 0.1
    assert pick(learned, 0.0) is None


def test_cross_validation_needs_two_folds() -> None:
    with pytest.raises(InvalidInput):
        cv_curve(outcomes(20), LEARNED, folds=1)


def point(lam: float, cost: float, quality: float, setting: str = "s") -> CurvePoint:
    """A curve point made of two equal folds (always-best: cost 1, quality 1 per fold)."""
    fold = (cost, quality, 1.0, 1.0)
    return CurvePoint(setting, lam, False, cost, quality, (fold, fold))


def test_a_mix_spends_the_budget_that_one_lambda_leaves_unused() -> None:
    # a curve that jumps: 0.07 -> 0.27 of the cost with nothing in between
    curve = [point(1.0, 0.07, 0.90), point(0.1, 0.27, 0.95), point(0.01, 0.9, 0.99)]
    one = pick(curve, 0.15, margin=1.0)
    assert one is not None and one.cost_ratio == 0.07
    mix = pick_mix(curve, 0.15, margin=1.0)
    assert mix is not None and mix.cheap.lam == 1.0 and mix.rich.lam == 0.1
    assert mix.cost_ratio == pytest.approx(0.15)
    assert mix.quality_ratio == pytest.approx(0.90 + 0.4 * 0.05)
    assert mix.rule().share == pytest.approx(0.4)
    # nothing under the budget: no pick; a lone point when nothing richer helps
    assert pick_mix(curve, 0.05) is None
    lone = pick_mix([point(1.0, 0.07, 0.90), point(0.1, 0.27, 0.85)], 0.15)
    assert lone is not None and lone.share == 0.0


def test_nested_scores_each_fold_with_a_pick_made_on_the_others() -> None:
    # fold 0 says lambda 0.5 is cheap and good; fold 1 says it is expensive: a pick made on
    # fold 0 alone and scored on fold 1 overspends, which nested must show
    tricky = CurvePoint("s", 0.5, False, 0.1, 0.95,
                        ((0.02, 0.97, 1.0, 1.0), (0.18, 0.93, 1.0, 1.0)))
    safe = point(1.0, 0.05, 0.90)
    assert tricky.without(1).cost_ratio == pytest.approx(0.02)
    honest = nested([tricky, safe], 0.15, lambda ps, b: pick(ps, b, margin=1.0))
    assert honest is not None
    cost, quality = honest
    assert cost == pytest.approx((0.18 + 0.05) / 2)  # fold 1 scored with the pick of fold 0
    assert quality == pytest.approx((0.93 + 0.90) / 2)


def test_curve_points_keep_their_folds() -> None:
    rows = outcomes(120)
    points = cv_curve(rows, LEARNED, baseline="oracle-xl", lambdas=LAMBDAS)
    assert all(len(p.folds) == 5 for p in points)
    best = nested([p for p in points if not p.floor], 0.3,
                  lambda ps, b: pick_mix(ps, b))
    assert best is not None and best[1] >= 0.85
