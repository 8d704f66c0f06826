"""Offline replay: train the predictor on one part of the evidence, route the rest, score it.

Every test item must carry the recorded outcome of each model a policy may pick, so a policy's
quality and cost on an item are simply the recorded score and cost of the model it picked. Items
are split by a seeded hash of their id (stable across runs and machines, and all models of one
item land on the same side). Reported per policy: mean cost and quality as ratios against
always-best (the model with the best mean training quality, or the one named), with 95%
bootstrap intervals over test items.

Policies: always-best, always-cheapest, the per-kind rule (cheapest model whose training mean for
the kind clears the bar, the router's rule without per-request evidence), the per-kind scores
under the utility rule (what the decision rule alone wins, without per-request evidence), the
learned router
under both decision rules (``policy.cheapest_adequate`` at several thresholds and
``policy.best_utility`` at several ``min_quality`` values), the cascade (cheapest first among
the candidates the learned threshold admits, the recorded score as a perfect validator: an upper
bound) and the oracle (the cheapest model that answered well).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from . import policy
from .embed import Embedder
from .outcomes import Outcome
from .predictor import Predictor, fit_predictor

F = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

ADEQUATE = 0.5  # a recorded score at or above this counts as an adequate answer
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
MIN_QUALITIES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
BARS = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class PolicyResult:
    """One policy on the test items; ratios are against the baseline model."""

    name: str
    rule: str
    threshold: float | None
    cost_ratio: float
    quality_ratio: float
    quality_ci: tuple[float, float]
    cost_ci: tuple[float, float]
    cost_usd: float
    quality: float
    upper_bound: bool = False
    lam: float | None = None

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "rule": self.rule, "threshold": self.threshold,
                "lambda": self.lam, "cost_ratio": self.cost_ratio,
                "quality_ratio": self.quality_ratio, "quality_ci": list(self.quality_ci),
                "cost_ci": list(self.cost_ci), "mean_cost_usd": self.cost_usd,
                "mean_quality": self.quality, "upper_bound": self.upper_bound}


@dataclass(frozen=True)
class ReplayReport:
    """What ``yard route replay`` prints; ``to_json`` is its ``--json`` shape."""

    baseline: str
    train_items: int
    test_items: int
    models: list[str]
    policies: list[PolicyResult]
    calibration_error: float
    method: str
    embedder: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"baseline": self.baseline, "train_items": self.train_items,
                "test_items": self.test_items, "models": self.models,
                "calibration_error": self.calibration_error, "method": self.method,
                "embedder": self.embedder, "notes": self.notes,
                "policies": [p.to_json() for p in self.policies]}


def split(outcomes: Sequence[Outcome], train_frac: float,
          seed: int = 0) -> tuple[list[Outcome], list[Outcome]]:
    """Items (not rows) to train with probability ``train_frac``, by a seeded hash of the id."""
    if not 0.0 < train_frac < 1.0:
        raise InvalidInput(f"train fraction must be in (0, 1), got {train_frac}",
                           field="train_frac")

    def is_train(item_id: str) -> bool:
        digest = hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()
        return int(digest[:12], 16) / 16**12 < train_frac

    train = [o for o in outcomes if is_train(o.item_id)]
    test = [o for o in outcomes if not is_train(o.item_id)]
    return train, test


@dataclass
class _Table:
    """Test items x models: recorded score and cost (nan where the model has no outcome)."""

    item_ids: list[str]
    kinds: list[str]
    texts: list[str]
    score: F
    cost: F


def _table(test: Sequence[Outcome], models: list[str],
           expected: dict[tuple[str, str], float]) -> _Table:
    index = {m: i for i, m in enumerate(models)}
    rows: dict[tuple[str, str], int] = {}
    kinds: list[str] = []
    texts: list[str] = []
    ids: list[str] = []
    for o in test:
        if o.model in index and (o.kind, o.item_id) not in rows:
            rows[(o.kind, o.item_id)] = len(rows)
            kinds.append(o.kind)
            texts.append(o.text)
            ids.append(o.item_id)
    score = np.full((len(rows), len(models)), np.nan)
    cost = np.full_like(score, np.nan)
    for o in test:
        r = rows.get((o.kind, o.item_id))
        if r is None or o.model not in index:
            continue
        j = index[o.model]
        score[r, j] = o.score
        cost[r, j] = o.cost_usd if o.cost_usd is not None else expected.get((o.model, o.kind),
                                                                            0.0)
    return _Table(ids, kinds, texts, score, cost)


def _means(train: Sequence[Outcome]) -> tuple[dict[tuple[str, str], float],
                                              dict[tuple[str, str], float]]:
    """Per (model, kind): mean training score and mean training cost (expected cost)."""
    q: dict[tuple[str, str], list[float]] = defaultdict(list)
    c: dict[tuple[str, str], list[float]] = defaultdict(list)
    for o in train:
        q[(o.model, o.kind)].append(o.score)
        if o.cost_usd is not None:
            c[(o.model, o.kind)].append(o.cost_usd)
    return ({k: float(np.mean(v)) for k, v in q.items()},
            {k: float(np.mean(v)) for k, v in c.items()})


def _ece(p: F, y: F, bins: int = 10) -> float:
    """Expected calibration error of probabilities ``p`` against outcomes ``y`` (flattened)."""
    keep = ~(np.isnan(p) | np.isnan(y))
    p, y = p[keep], (y[keep] >= ADEQUATE).astype(np.float64)
    if p.size == 0:
        return float("nan")
    edges = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = edges == b
        if sel.any():
            total += float(sel.sum()) * abs(float(p[sel].mean()) - float(y[sel].mean()))
    return total / p.size


def replay(train: Sequence[Outcome], test: Sequence[Outcome], embedder: Embedder, *,
           baseline: str | None = None, boots: int = 1000, seed: int = 0,
           thresholds: Sequence[float] = THRESHOLDS,
           min_qualities: Sequence[float] = MIN_QUALITIES, bars: Sequence[float] = BARS,
           progress: Callable[[str], None] | None = None,
           predictor: Predictor | None = None, with_floor: bool = False,
           cost_scale: float | None = None, mixes: Sequence[policy.BudgetMix] = (),
           **hyper: object) -> ReplayReport:
    """Train on ``train`` (or use ``predictor``), route each item of ``test``, score policies.

    ``mixes`` adds the budgeted utility rule (``policy.BudgetMix``) at each mix given.
    """
    if not train or not test:
        raise InvalidInput("replay needs outcomes on both sides of the split "
                           "(too few items, or a train fraction of 0 or 1)", field="outcomes")
    say = progress or (lambda _: None)
    quality, expected = _means(train)
    models = sorted({m for m, _ in quality} & {o.model for o in test})
    if not models:
        raise InvalidInput("no model has outcomes in both the training and the test part",
                           field="outcomes")
    overall = {m: float(np.mean([v for (mm, _), v in quality.items() if mm == m]))
               for m in models}
    best = baseline or max(models, key=lambda m: (overall[m], m))
    if best not in models:
        raise InvalidInput(f"baseline model '{best}' has no outcomes on both sides",
                           field="baseline")
    table = _table(test, models, expected)
    # Only items the baseline answered can be compared against it.
    keep = ~np.isnan(table.score[:, models.index(best)])
    table = _Table([x for x, k in zip(table.item_ids, keep, strict=True) if k],
                   [x for x, k in zip(table.kinds, keep, strict=True) if k],
                   [x for x, k in zip(table.texts, keep, strict=True) if k],
                   table.score[keep], table.cost[keep])
    n = len(table.item_ids)
    if n == 0:
        raise InvalidInput(f"no test item has an outcome for the baseline '{best}'",
                           field="baseline")
    say(f"training the predictor on {len({o.item_id for o in train})} items")
    pred = predictor or fit_predictor(train, embedder, priors=None, **hyper)
    say(f"predicting {n} test items")
    p = np.full_like(table.score, np.nan)
    pmodel = [pred.models.index(m) if m in pred.models else -1 for m in models]
    by_kind: dict[str, list[int]] = defaultdict(list)
    for r, kind in enumerate(table.kinds):
        by_kind[kind].append(r)
    for kind, rows in by_kind.items():
        many = pred.predict_many(kind, [table.texts[r] for r in rows])
        for j, pj in enumerate(pmodel):
            if pj >= 0:
                p[rows, j] = many[:, pj]
    available = ~np.isnan(table.score)
    exp_cost = np.array([[expected.get((m, k), np.nan) for m in models] for k in table.kinds])
    exp_cost = np.where(np.isnan(exp_cost), np.nanmean(table.cost, axis=0), exp_cost)
    kind_q = np.array([[quality.get((m, k), np.nan) for m in models] for k in table.kinds])
    b = models.index(best)
    rng = np.random.default_rng(seed)
    resample = rng.integers(0, n, size=(boots, n))
    base_q, base_c = table.score[:, b], table.cost[:, b]

    def result(name: str, rule: str, choice: Ints, *, threshold: float | None = None,
               lam: float | None = None, paid: F | None = None, got: F | None = None,
               upper_bound: bool = False) -> PolicyResult:
        rows = np.arange(n)
        q = got if got is not None else table.score[rows, choice]
        c = paid if paid is not None else table.cost[rows, choice]
        qr = q[resample].mean(axis=1) / np.maximum(base_q[resample].mean(axis=1), 1e-12)
        cr = c[resample].mean(axis=1) / np.maximum(base_c[resample].mean(axis=1), 1e-12)
        return PolicyResult(
            name=name, rule=rule, threshold=threshold, lam=lam,
            cost_ratio=float(c.mean() / max(base_c.mean(), 1e-12)),
            quality_ratio=float(q.mean() / max(base_q.mean(), 1e-12)),
            quality_ci=(float(np.percentile(qr, 2.5)), float(np.percentile(qr, 97.5))),
            cost_ci=(float(np.percentile(cr, 2.5)), float(np.percentile(cr, 97.5))),
            cost_usd=float(c.mean()), quality=float(q.mean()), upper_bound=upper_bound)

    def pick(rule: Callable[[dict[str, float], dict[str, float]], str | None],
             values: F, fallback: F) -> Ints:
        out = np.empty(n, dtype=np.int64)
        for r in range(n):
            cand = [j for j in range(len(models)) if available[r, j] and not np.isnan(values[r, j])]
            chosen = rule({models[j]: float(values[r, j]) for j in cand},
                          {models[j]: float(exp_cost[r, j]) for j in cand})
            if chosen is None:  # nothing clears the bar: best effort, the highest estimate
                fb = [j for j in range(len(models)) if available[r, j]]
                out[r] = max(fb, key=lambda j: (np.nan_to_num(fallback[r, j], nan=-1.0),
                                                -exp_cost[r, j]))
            else:
                out[r] = models.index(chosen)
        return out

    say("scoring policies")
    results = [result(f"always-best ({best})", "fixed", np.full(n, b))]
    cheapest = min(models, key=lambda m: (np.nanmean(exp_cost[:, models.index(m)]), m))
    results.append(result(f"always-cheapest ({cheapest})", "fixed",
                          np.full(n, models.index(cheapest))))
    def threshold_rule(t: float) -> Callable[[dict[str, float], dict[str, float]], str | None]:
        return lambda pp, cc: policy.cheapest_adequate(pp, cc, t)

    def utility_rule(lam: float, floor: float = 0.0
                     ) -> Callable[[dict[str, float], dict[str, float]], str | None]:
        return lambda pp, cc: policy.best_utility(pp, cc, lam, cost_scale, floor=floor)

    for bar in bars:
        results.append(result(f"per-kind rule @ {bar:g}", "per-kind",
                              pick(threshold_rule(bar), kind_q, kind_q), threshold=bar))
    for mq in min_qualities:
        _, lam = policy.rule_for(mq)
        results.append(result(f"per-kind scores, utility @ min_quality {mq:g}", "per-kind-utility",
                              pick(utility_rule(lam), kind_q, kind_q), threshold=mq, lam=lam))
    for t in thresholds:
        results.append(result(f"learned, threshold @ {t:g}", "threshold",
                              pick(threshold_rule(t), p, p), threshold=t))
    for mq in min_qualities:
        _, lam = policy.rule_for(mq)
        results.append(result(f"learned, utility @ min_quality {mq:g}", "utility",
                              pick(utility_rule(lam), p, p), threshold=mq, lam=lam))
        if with_floor:
            results.append(result(f"learned, utility, p >= {mq:g} @ min_quality {mq:g}",
                                  "utility-floor", pick(utility_rule(lam, mq), p, p),
                                  threshold=mq, lam=lam))
    shares = np.array([policy.request_share(t) for t in table.texts])
    for mix in mixes:
        cheap = pick(utility_rule(mix.lam_cheap), p, p)
        rich = pick(utility_rule(mix.lam_rich), p, p)
        results.append(result(
            f"learned, utility mix lambda {mix.lam_cheap:.3g} / {mix.lam_rich:.3g} "
            f"({mix.share:.2f} at the second)", "utility-mix",
            np.where(shares < mix.share, rich, cheap), lam=mix.lam_rich))
    for t in (thresholds[0], thresholds[len(thresholds) // 2]):
        paid, got = _cascade(table, p, exp_cost, available, t)
        results.append(result(f"cascade @ {t:g} (perfect validator: upper bound)", "cascade",
                              np.zeros(n, dtype=np.int64), threshold=t, paid=paid, got=got,
                              upper_bound=True))
    results.append(result("oracle (cheapest adequate answer)", "oracle",
                          _oracle(table, exp_cost, available), upper_bound=True))
    return ReplayReport(
        baseline=best, train_items=len({(o.kind, o.item_id) for o in train}), test_items=n,
        models=models, policies=results, calibration_error=_ece(p, table.score),
        method=pred.hyper.method, embedder=pred.embedder.name)


def _cascade(table: _Table, p: F, exp_cost: F, available: npt.NDArray[np.bool_],
             threshold: float) -> tuple[F, F]:
    """Cheapest first among models with ``p >= threshold``, then the rest by p.

    Stops at the first adequate recorded answer; every attempt is paid for.
    """
    n, m = table.score.shape
    paid, got = np.zeros(n), np.zeros(n)
    for r in range(n):
        cand = [j for j in range(m) if available[r, j]]
        admitted = sorted([j for j in cand if np.nan_to_num(p[r, j]) >= threshold],
                          key=lambda j: exp_cost[r, j])
        rest = sorted([j for j in cand if j not in admitted],
                      key=lambda j: -np.nan_to_num(p[r, j]))
        for j in admitted + rest:
            paid[r] += table.cost[r, j]
            got[r] = table.score[r, j]
            if table.score[r, j] >= ADEQUATE:
                break
    return paid, got


def _oracle(table: _Table, exp_cost: F, available: npt.NDArray[np.bool_]) -> Ints:
    out = np.empty(table.score.shape[0], dtype=np.int64)
    for r in range(len(out)):
        cand = [j for j in range(table.score.shape[1]) if available[r, j]]
        good = [j for j in cand if table.score[r, j] >= ADEQUATE]
        pool = good or cand
        out[r] = min(pool, key=lambda j: (table.cost[r, j], exp_cost[r, j]))
    return out
