"""Choosing a predictor setting and a utility-rule lambda for a cost budget by cross-validation
inside the training outcomes (``routing.tuning``)."""

from __future__ import annotations

import pytest
from modelyard_registry.errors import InvalidInput
from modelyard_registry.routing.embed import HashedNgramEmbedder
from modelyard_registry.routing.tuning import Setting, cv_curve, pick

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
