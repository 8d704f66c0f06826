"""Choosing a predictor and a cost weight by cross-validation inside the training outcomes.

An operator states a budget ("at most 15% of always-best's cost"); the router needs a predictor
setting and a utility-rule ``lambda`` that spend about that.  Both are chosen here on the
training outcomes alone: the items are split into ``folds`` by a hash of their id, each fold is
replayed with a predictor trained on the others (``replay.replay``), and the folds' costs and
qualities are pooled over a grid of ``lambda``s.  The pick is the (setting, ``lambda``) with the
best pooled quality whose pooled cost ratio stays under ``margin`` x the budget: a held-out split
spends a little more or less than cross-validation said, and the margin is what keeps the
promise.  Whatever set is reported on (a dev split) is touched once, with the pick.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from .embed import Embedder
from .outcomes import Outcome
from .replay import replay

# lambda from 4 (cost dominates) down to 0.032 (quality dominates; min_quality 0.97, the top of
# the utility range), geometric
LAMBDAS = tuple(round(4.0 * (0.032 / 4.0) ** (i / 29), 4) for i in range(30))


@dataclass(frozen=True)
class Setting:
    """One predictor configuration to try: a label, its embedder and ``fit_predictor`` knobs."""

    label: str
    embedder: Embedder
    hyper: Mapping[str, object]
    absolute_cost: bool = False  # lambda prices dollars (vs the priciest model's mean cost)


@dataclass(frozen=True)
class CurvePoint:
    """Pooled out-of-fold cost and quality ratios (against always-best) at one ``lambda``."""

    setting: str
    lam: float
    floor: bool
    cost_ratio: float
    quality_ratio: float


def fold_of(item_id: str, folds: int, seed: int = 0) -> int:
    digest = hashlib.sha256(f"cv{seed}:{item_id}".encode()).hexdigest()
    return int(digest[:12], 16) % folds


def cv_curve(train: Sequence[Outcome], setting: Setting, *, baseline: str | None = None,
             folds: int = 5, lambdas: Sequence[float] = LAMBDAS,
             progress: Callable[[str], None] | None = None) -> list[CurvePoint]:
    """Out-of-fold cost/quality of the learned utility rule at each ``lambda``, pooled.

    Both with and without the ``min_quality`` floor (``policy.best_utility``'s ``floor``).
    """
    if folds < 2:
        raise InvalidInput("cross-validation needs at least 2 folds", field="folds")
    lam_of = {1.0 / (1.0 + lam): lam for lam in lambdas}  # min_quality -> lambda (rule_for)
    sums: dict[tuple[str, float], list[float]] = {}
    knobs: dict[str, Any] = dict(setting.hyper)  # fit_predictor's keyword settings
    for fold in range(folds):
        fit = [o for o in train if fold_of(o.item_id, folds) != fold]
        held = [o for o in train if fold_of(o.item_id, folds) == fold]
        if not fit or not held:
            continue
        if progress:
            progress(f"{setting.label}: fold {fold + 1}/{folds}")
        scale = priciest_mean_cost(fit) if setting.absolute_cost else None
        report = replay(fit, held, setting.embedder, baseline=baseline, boots=1, with_floor=True,
                        cost_scale=scale,
                        min_qualities=list(lam_of), thresholds=(0.5,), bars=(0.5,),
                        **knobs)
        n = report.test_items
        base = report.policies[0]  # always-best
        for p in report.policies:
            if p.rule not in ("utility", "utility-floor") or p.threshold is None:
                continue
            acc = sums.setdefault((p.rule, lam_of[p.threshold]), [0.0, 0.0, 0.0, 0.0])
            acc[0] += n * p.cost_usd
            acc[1] += n * p.quality
            acc[2] += n * base.cost_usd
            acc[3] += n * base.quality
    return [CurvePoint(setting=setting.label, lam=lam, floor=rule == "utility-floor",
                       cost_ratio=c / max(bc, 1e-12), quality_ratio=q / max(bq, 1e-12))
            for (rule, lam), (c, q, bc, bq) in sorted(sums.items())]


def priciest_mean_cost(outcomes: Sequence[Outcome]) -> float:
    """The highest per-model mean cost: one unit of cost for an absolute ``lambda``."""
    totals: dict[str, list[float]] = {}
    for o in outcomes:
        if o.cost_usd is not None:
            acc = totals.setdefault(o.model, [0.0, 0.0])
            acc[0] += o.cost_usd
            acc[1] += 1
    return max((c / n for c, n in totals.values() if n), default=1.0) or 1.0


def pick(points: Sequence[CurvePoint], budget: float, margin: float = 0.85) -> CurvePoint | None:
    """The best pooled quality with cost ratio <= ``margin`` x ``budget`` (ties: cheaper)."""
    ok = [p for p in points if p.cost_ratio <= margin * budget]
    if not ok:
        return None
    return max(ok, key=lambda p: (p.quality_ratio, -p.cost_ratio))


__all__ = ["LAMBDAS", "CurvePoint", "Setting", "cv_curve", "fold_of", "pick", "priciest_mean_cost"]
