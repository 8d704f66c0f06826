"""The decision rules on hand-built predictions."""

from __future__ import annotations

import pytest
from modelyard_registry.routing import policy

P = {"small": 0.62, "medium": 0.80, "large": 0.93}
COST = {"small": 0.001, "medium": 0.004, "large": 0.05}


def test_threshold_rule_takes_the_cheapest_model_that_clears_the_bar() -> None:
    assert policy.cheapest_adequate(P, COST, 0.6) == "small"
    assert policy.cheapest_adequate(P, COST, 0.75) == "medium"
    assert policy.cheapest_adequate(P, COST, 0.9) == "large"
    assert policy.cheapest_adequate(P, COST, 0.95) is None
    # a model without a known cost is never picked
    assert policy.cheapest_adequate({**P, "free?": 0.99}, COST, 0.95) is None


def test_utility_rule_trades_probability_for_relative_cost() -> None:
    assert policy.best_utility(P, COST, 0.0) == "large"  # quality only
    # large buys 0.13 over medium for (0.05 - 0.004) / 0.05 = 0.92 of the top price
    assert policy.best_utility(P, COST, 0.1) == "large"
    assert policy.best_utility(P, COST, 0.2) == "medium"
    assert policy.best_utility(P, COST, 10.0) == "small"
    assert policy.best_utility({}, COST, 0.1) is None
    # an explicit scale (e.g. the frontier model's cost) changes what a unit of lambda means
    assert policy.best_utility(P, COST, 0.2, cost_scale=0.5) == "large"


def test_min_quality_maps_to_one_rule() -> None:
    assert policy.rule_for(0.0) == ("threshold", 0.0)
    assert policy.rule_for(0.99) == ("threshold", 0.99)
    rule, lam = policy.rule_for(0.8)
    assert rule == "utility" and lam == pytest.approx(0.25)
    lams = [policy.rule_for(q)[1] for q in (0.5, 0.7, 0.9, 0.95)]
    assert lams == sorted(lams, reverse=True)  # a higher bar never pays less for quality
    with pytest.raises(ValueError):
        policy.rule_for(1.5)


def test_choose_dispatches_on_min_quality() -> None:
    assert policy.choose(P, COST, 0.0) == "small"
    assert policy.choose(P, COST, 0.98) is None  # nothing is that good: the caller decides
    assert policy.choose(P, COST, 0.5) == "medium"  # lambda 1: 0.80 - 0.08 > 0.62 - 0.02
    assert policy.choose(P, COST, 0.95) == "large"


def test_a_budget_mix_prices_a_stable_share_of_requests_with_the_richer_lambda() -> None:
    mix = policy.BudgetMix(lam_cheap=1.0, lam_rich=0.1, share=0.3)
    texts = [f"request number {i}" for i in range(2000)]
    rich = [t for t in texts if mix.lam_for(t) == 0.1]
    assert abs(len(rich) / len(texts) - 0.3) < 0.04
    # the same request always gets the same lambda (replay and serving agree)
    assert all(mix.lam_for(t) == 0.1 for t in rich)
    assert policy.BudgetMix(1.0, 0.1, 0.0).lam_for(texts[0]) == 1.0
    assert policy.BudgetMix(1.0, 0.1, 1.0).lam_for(texts[0]) == 0.1
    # at lambda 1 medium wins, at 0.1 large: the mix sends its share to large
    picks = {policy.choose_within_budget(P, COST, mix, t) for t in texts[:50]}
    assert picks == {"medium", "large"}
    with pytest.raises(ValueError):
        policy.BudgetMix(1.0, 0.1, 1.5)
    with pytest.raises(ValueError):
        policy.BudgetMix(0.1, 1.0, 0.5)
