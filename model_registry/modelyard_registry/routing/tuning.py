"""Choosing a predictor and a cost weight by cross-validation inside the training outcomes.

An operator states a budget ("at most 15% of always-best's cost"); the router needs a predictor
setting and a utility-rule ``lambda`` that spend about that.  Both are chosen here on the
training outcomes alone: the items are split into ``folds`` by a hash of their id, each fold is
replayed with a predictor trained on the others (``replay.replay``), and the folds' costs and
qualities are pooled over a grid of ``lambda``s.  The pick is the (setting, ``lambda``) with the
best pooled quality whose pooled cost ratio stays under ``margin`` x the budget: a held-out split
spends a little more or less than cross-validation said, and the margin is what keeps the
promise.  Whatever set is reported on (a dev split) is touched once, with the pick.

``pick_mix`` spends the budget instead of stopping at the last curve point under it: it mixes
the two lambdas around it (``policy.BudgetMix``), reaching the concave hull of the pooled curve.
``nested`` says how much of any pick's advantage is selection luck: each fold is scored with the
pick made on the other folds' pooled sums, so the fold that reports never chose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from .embed import Embedder
from .outcomes import Outcome
from .policy import BudgetMix
from .replay import replay

# lambda from 4 (cost dominates) down to 0.032 (quality dominates; min_quality 0.97, the top of
# the utility range), geometric
LAMBDAS = tuple(round(4.0 * (0.032 / 4.0) ** (i / 29), 4) for i in range(30))
MIN_CURVE_ITEMS = 40  # requests graded for >= 2 models before a served curve is measured


@dataclass(frozen=True)
class Setting:
    """One predictor configuration to try: a label, its embedder and ``fit_predictor`` knobs."""

    label: str
    embedder: Embedder
    hyper: Mapping[str, object]
    absolute_cost: bool = False  # lambda prices dollars (vs the priciest model's mean cost)


# one fold's sums: (cost, quality, always-best's cost, always-best's quality)
FoldSums = tuple[float, float, float, float]


@dataclass(frozen=True)
class CurvePoint:
    """Pooled out-of-fold cost and quality ratios (against always-best) at one ``lambda``.

    ``folds`` keeps each fold's sums so a pick can be re-made without any one fold (``nested``).
    """

    setting: str
    lam: float
    floor: bool
    cost_ratio: float
    quality_ratio: float
    folds: tuple[FoldSums, ...] = ()

    def without(self, fold: int) -> CurvePoint:
        """The same point pooled over every fold but ``fold``."""
        kept = [s for n, s in enumerate(self.folds) if n != fold]
        c, q, bc, bq = (sum(s[i] for s in kept) for i in range(4))
        return CurvePoint(self.setting, self.lam, self.floor, c / max(bc, 1e-12),
                          q / max(bq, 1e-12), tuple(kept))


@dataclass(frozen=True)
class Mix:
    """A budgeted pick: two curve points of one setting and the share priced at the richer one.

    Its ratios are the chord's: ``(1 - share) * cheap + share * rich`` (expected, pooled).
    """

    cheap: CurvePoint
    rich: CurvePoint
    share: float

    @property
    def setting(self) -> str:
        return self.cheap.setting

    @property
    def cost_ratio(self) -> float:
        return (1 - self.share) * self.cheap.cost_ratio + self.share * self.rich.cost_ratio

    @property
    def quality_ratio(self) -> float:
        return ((1 - self.share) * self.cheap.quality_ratio
                + self.share * self.rich.quality_ratio)

    def rule(self) -> BudgetMix:
        """The serving-side rule: ``policy.BudgetMix``."""
        return BudgetMix(lam_cheap=self.cheap.lam, lam_rich=self.rich.lam, share=self.share)

    def fold_sums(self, fold: int) -> FoldSums:
        a, b = self.cheap.folds[fold], self.rich.folds[fold]
        s = self.share
        return ((1 - s) * a[0] + s * b[0], (1 - s) * a[1] + s * b[1], a[2], a[3])


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
    sums: dict[tuple[str, float], list[FoldSums]] = {}
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
            sums.setdefault((p.rule, lam_of[p.threshold]), []).append(
                (n * p.cost_usd, n * p.quality, n * base.cost_usd, n * base.quality))
    out = []
    for (rule, lam), per_fold in sorted(sums.items()):
        c, q, bc, bq = (sum(s[i] for s in per_fold) for i in range(4))
        out.append(CurvePoint(setting=setting.label, lam=lam, floor=rule == "utility-floor",
                              cost_ratio=c / max(bc, 1e-12), quality_ratio=q / max(bq, 1e-12),
                              folds=tuple(per_fold)))
    return out


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


def pick_mix(points: Sequence[CurvePoint], budget: float, margin: float = 0.9) -> Mix | None:
    """The best chord between two points of one setting (and floor) at cost ``margin`` x budget.

    A point under the target paired with one over it, mixed so that the pooled cost lands on
    the target; a lone point (share 0) when nothing richer helps. None when no point is under.
    Ties go to the cheaper mix.
    """
    target = margin * budget
    best: Mix | None = None
    groups: dict[tuple[str, bool], list[CurvePoint]] = {}
    for p in points:
        groups.setdefault((p.setting, p.floor), []).append(p)
    for group in groups.values():
        for low in (p for p in group if p.cost_ratio <= target):
            options = [Mix(low, low, 0.0)]
            for high in group:
                if high.cost_ratio > target and high.quality_ratio > low.quality_ratio:
                    share = (target - low.cost_ratio) / (high.cost_ratio - low.cost_ratio)
                    options.append(Mix(low, high, share))
            for m in options:
                if best is None or (m.quality_ratio, -m.cost_ratio) > (best.quality_ratio,
                                                                      -best.cost_ratio):
                    best = m
    return best


def served_curve(outcomes: Sequence[Outcome], embedder: Embedder, hyper: Mapping[str, object],
                 *, folds: int = 5, min_items: int = MIN_CURVE_ITEMS) -> list[CurvePoint]:
    """The cost/quality curve of the predictor ``train`` fits, cross-validated on its evidence.

    What a served cost budget (``max_cost_ratio``) is mapped through: each point is a utility-rule
    ``lambda`` with the cost and quality ratios (against always-best) it reached out of fold.
    Empty when there is too little to measure: fewer than ``min_items`` requests graded for two
    or more models, or a fold without both sides.
    """
    per_item: dict[tuple[str, str], set[str]] = {}
    for o in outcomes:
        per_item.setdefault((o.kind, o.item_id), set()).add(o.model)
    if sum(1 for models in per_item.values() if len(models) >= 2) < min_items:
        return []
    setting = Setting("served", embedder, hyper)
    try:
        points = cv_curve(outcomes, setting, folds=folds)
    except InvalidInput:
        return []
    return [p for p in points if not p.floor]


def curve_rows(points: Sequence[CurvePoint]) -> list[dict[str, float]]:
    """The JSON a routing version stores (``RoutingVersion.budget_curve``)."""
    return [{"lam": p.lam, "cost_ratio": round(p.cost_ratio, 6),
             "quality_ratio": round(p.quality_ratio, 6)} for p in points]


def curve_from_rows(rows: Sequence[Mapping[str, float]]) -> list[CurvePoint]:
    """A stored curve back as points (rows missing a field are skipped)."""
    out = []
    for r in rows:
        try:
            out.append(CurvePoint(setting="served", lam=float(r["lam"]), floor=False,
                                  cost_ratio=float(r["cost_ratio"]),
                                  quality_ratio=float(r["quality_ratio"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def mix_for_budget(points: Sequence[CurvePoint], budget: float) -> BudgetMix | None:
    """The served rule for ``budget`` (a cost ratio against always-best) on a stored curve.

    ``pick_mix`` with its margin; when even the cheapest point costs more than the budget, that
    cheapest point alone (the least the router can spend). None for an empty curve.
    """
    if not points:
        return None
    mix = pick_mix(points, budget)
    if mix is not None:
        return mix.rule()
    cheapest = min(points, key=lambda p: (p.cost_ratio, -p.quality_ratio))
    return BudgetMix(lam_cheap=cheapest.lam, lam_rich=cheapest.lam, share=0.0)


def nested(points: Sequence[CurvePoint], budget: float,
           chooser: Callable[[Sequence[CurvePoint], float], CurvePoint | Mix | None]
           ) -> tuple[float, float] | None:
    """(cost ratio, quality ratio) of ``chooser``'s pick scored on folds it did not see.

    For each fold the pick is made on the points pooled over the other folds, and the fold's
    own sums at that pick are added up: a cross-validated figure for the whole procedure
    (setting and lambda selection included), free of the optimism of choosing and reporting on
    the same folds. A mix counts its expected sums. None when some fold has no pick.
    """
    folds = min((len(p.folds) for p in points), default=0)
    totals = [0.0, 0.0, 0.0, 0.0]
    for fold in range(folds):
        chosen = chooser([p.without(fold) for p in points], budget)
        if chosen is None:
            return None
        if isinstance(chosen, Mix):
            full = {(p.setting, p.floor, p.lam): p for p in points}
            mix = Mix(full[(chosen.cheap.setting, chosen.cheap.floor, chosen.cheap.lam)],
                      full[(chosen.rich.setting, chosen.rich.floor, chosen.rich.lam)],
                      chosen.share)
            sums = mix.fold_sums(fold)
        else:
            point = next(p for p in points if (p.setting, p.floor, p.lam)
                         == (chosen.setting, chosen.floor, chosen.lam))
            sums = point.folds[fold]
        totals = [t + s for t, s in zip(totals, sums, strict=True)]
    if folds == 0:
        return None
    return totals[0] / max(totals[2], 1e-12), totals[1] / max(totals[3], 1e-12)


__all__ = ["LAMBDAS", "MIN_CURVE_ITEMS", "CurvePoint", "FoldSums", "Mix", "Setting",
           "curve_from_rows", "curve_rows", "cv_curve", "fold_of", "mix_for_budget", "nested",
           "pick", "pick_mix", "priciest_mean_cost", "served_curve"]
