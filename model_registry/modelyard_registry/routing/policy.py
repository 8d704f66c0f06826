"""Decision rules over per-request predictions: which model, given p and expected cost.

Pure functions of plain numbers, so the router, the cascade and replay share them.

- ``cheapest_adequate`` (the threshold rule): the cheapest model whose predicted probability
  reaches the bar. Faithful to "adequate = p >= min_quality", but brittle: a cheap model whose
  estimate is a little optimistic wins every time, and one pessimistic estimate of the cheap
  model sends the request to the frontier. In replay on public data it spends far more for the
  same quality than the utility rule (see ``docs/routing.md``).
- ``best_utility`` (the utility rule): the model maximising ``p - lambda * cost / cost_scale``.
  ``lambda`` is how many points of probability one frontier-priced call is worth; it trades
  quality for cost smoothly, so small errors in ``p`` move the choice only when two models are
  close in utility anyway.

``choose`` maps the user's one knob, ``min_quality``, to a rule:

- ``min_quality`` in (0, ``UTILITY_UP_TO``]: the utility rule with
  ``lambda = (1 - min_quality) / min_quality``: 0.5 -> 1 (a frontier call must buy a whole point
  of probability: the cheap end), 0.8 -> 0.25, 0.9 -> 0.11, 0.95 -> 0.05 (near the best model).
  Replay on public data found this rule cheaper than the threshold rule at every quality level.
- above ``UTILITY_UP_TO`` and for ``min_quality`` 0 (no bar): the threshold rule on the
  calibrated probability, where ``min_quality`` keeps its literal meaning: "a model whose
  predicted chance of an adequate answer is at least this". 0 takes the cheapest model.
Models with no prediction never reach these functions: the router applies the per-kind score
rule to them, as before.

A cost *budget* (rather than a price of quality) is served by ``BudgetMix``: two lambdas and the
share of requests that get the richer one. One lambda reaches only the points of the cost/quality
curve it traces, and on public data that curve jumps (per-kind evidence moves whole kinds to the
frontier at once: 0.07 -> 0.27 of its cost), so the best single lambda under a budget of 0.15
spends 0.07-0.11 and leaves the rest unused. Mixing the two lambdas around the budget reaches any
point on the chord between them, i.e. the concave hull of the curve: the Lagrangian optimum of
"best quality at cost <= budget" over randomised policies. The share is drawn from a hash of the
request text, not a random number, so the same request always gets the same model and a replay
is reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Rule = Literal["threshold", "utility"]

UTILITY_UP_TO = 0.97


def cheapest_adequate(p: Mapping[str, float], cost: Mapping[str, float],
                      threshold: float) -> str | None:
    """The cheapest model with ``p >= threshold`` (ties: higher p, then name); None if none."""
    adequate = [m for m, value in p.items() if value >= threshold and m in cost]
    if not adequate:
        return None
    return min(adequate, key=lambda m: (cost[m], -p[m], m))


def best_utility(p: Mapping[str, float], cost: Mapping[str, float], lam: float,
                 cost_scale: float | None = None, floor: float = 0.0) -> str | None:
    """The model maximising ``p - lam * cost / cost_scale`` among those with ``p >= floor``.

    The scale is the priciest candidate's cost; None when no model reaches the floor.
    """
    names = [m for m in p if m in cost and p[m] >= floor]
    if not names:
        return None
    scale = cost_scale if cost_scale else max(cost[m] for m in names) or 1.0
    return max(names, key=lambda m: (p[m] - lam * cost[m] / scale, -cost[m], m))


def rule_for(min_quality: float) -> tuple[Rule, float]:
    """The rule and its parameter (threshold or lambda) that serve ``min_quality``."""
    if not 0.0 <= min_quality <= 1.0:
        raise ValueError(f"min_quality must be in [0, 1], got {min_quality}")
    if min_quality == 0.0 or min_quality > UTILITY_UP_TO:
        return "threshold", min_quality
    return "utility", (1.0 - min_quality) / min_quality


def choose(p: Mapping[str, float], cost: Mapping[str, float], min_quality: float,
           cost_scale: float | None = None) -> str | None:
    """The model ``min_quality`` asks for; None when the threshold rule finds none adequate."""
    rule, value = rule_for(min_quality)
    if rule == "threshold":
        return cheapest_adequate(p, cost, value)
    return best_utility(p, cost, value, cost_scale)


def request_share(text: str) -> float:
    """Where a request falls in [0, 1): a hash of its text, stable across processes."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class BudgetMix:
    """Two utility-rule lambdas and the share of requests priced with the richer (smaller) one.

    ``lam_rich`` <= ``lam_cheap``; ``share`` in [0, 1]. With ``share`` 0 it is one lambda.
    """

    lam_cheap: float
    lam_rich: float
    share: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share must be in [0, 1], got {self.share}")
        if self.lam_rich > self.lam_cheap:
            raise ValueError("lam_rich must not exceed lam_cheap")

    def lam_for(self, text: str) -> float:
        """The lambda this request is priced with."""
        return self.lam_rich if request_share(text) < self.share else self.lam_cheap


def choose_within_budget(p: Mapping[str, float], cost: Mapping[str, float], mix: BudgetMix,
                         text: str, cost_scale: float | None = None) -> str | None:
    """The utility rule at the lambda ``mix`` gives this request."""
    return best_utility(p, cost, mix.lam_for(text), cost_scale)
