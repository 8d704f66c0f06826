"""Per-request routing on public outcomes (RouterBench): learned router vs the per-kind rule.

Reads ``../shared/data/routerbench/`` (never copied into the repository; ``--data`` overrides),
splits the queries by ``sha256(query_id) % 5 == 0`` into dev (~20%) and train, fits the predictor
on train and replays dev: cost ratio and quality ratio against always ``gpt-4-1106-preview``, with
95% bootstrap intervals, for always-cheapest, the per-kind rule (as the router decides without
per-request evidence), the per-kind scores under the utility rule, the learned router under the
threshold and the utility rule, the cascade (upper bound) and the oracle. Then the two targets:
the best quality ratio at cost ratio <= 0.15 and <= 0.08, learned vs per-kind.

The predictor's settings are the defaults, chosen by 5-fold cross-validation inside the train part
(``docs/routing.md``); the dev split is reported, not tuned on.

    .venv/bin/python bench/routing_public.py [--data DIR] [--variants]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: threads only contend

import argparse
import hashlib
import time
from pathlib import Path

from modelyard_registry.routing.embed import (
    Embedder,
    HashedNgramEmbedder,
    StaticEmbedder,
)
from modelyard_registry.routing.public_format import read_outcomes
from modelyard_registry.routing.replay import PolicyResult, replay

BASELINE = "gpt-4-1106-preview"
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "routerbench"


def is_dev(query_id: str) -> bool:
    return int(hashlib.sha256(query_id.encode()).hexdigest(), 16) % 5 == 0


def best_under(policies: list[PolicyResult], rules: set[str], budget: float) -> str:
    ok = [p for p in policies if p.rule in rules and p.cost_ratio <= budget]
    if not ok:
        return "none under budget"
    p = max(ok, key=lambda p: p.quality_ratio)
    return (f"quality {p.quality_ratio:.3f} [{p.quality_ci[0]:.3f}, {p.quality_ci[1]:.3f}] at "
            f"cost {p.cost_ratio:.3f}  ({p.name})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--variants", action="store_true",
                        help="Also replay isotonic map, logistic predictor, static embedder.")
    args = parser.parse_args()
    outcomes = read_outcomes(args.data / "train.jsonl", args.data / "prompts_train.jsonl")
    train = [o for o in outcomes if not is_dev(o.item_id)]
    dev = [o for o in outcomes if is_dev(o.item_id)]
    variants: list[tuple[str, Embedder, dict[str, object]]] = [
        ("knn over hashed n-grams (default)", HashedNgramEmbedder(), {"method": "knn"}),
    ]
    if args.variants:
        variants += [
            ("knn + isotonic map", HashedNgramEmbedder(), {"method": "knn", "calibrate": True}),
            ("logistic over hashed n-grams", HashedNgramEmbedder(), {"method": "logistic"}),
            ("knn over the static table", StaticEmbedder(), {"method": "knn"}),
        ]
    print(f"RouterBench: {len({o.item_id for o in train})} train queries, "
          f"{len({o.item_id for o in dev})} dev queries (sha256(query_id) % 5 == 0); "
          f"ratios against always {BASELINE}; [95% bootstrap interval]")
    for n, (label, embedder, hyper) in enumerate(variants):
        start = time.perf_counter()
        report = replay(train, dev, embedder, baseline=BASELINE, **hyper)
        elapsed = time.perf_counter() - start
        print(f"\n== {label}: fit + replay {elapsed:.1f} s, expected calibration error on dev "
              f"{report.calibration_error:.3f}")
        if n == 0:
            for p in report.policies:
                flag = "  (upper bound)" if p.upper_bound else ""
                print(f"  {p.name:<52} cost {p.cost_ratio:6.3f} [{p.cost_ci[0]:.3f}, "
                      f"{p.cost_ci[1]:.3f}]  quality {p.quality_ratio:6.3f} "
                      f"[{p.quality_ci[0]:.3f}, {p.quality_ci[1]:.3f}]{flag}")
        for budget, target in ((0.15, 0.95), (0.08, 0.90)):
            print(f"  cost <= {budget:.2f} (target quality >= {target:.2f}):")
            print(f"    per-kind rule          {best_under(report.policies, {'per-kind'}, budget)}")
            print("    per-kind + utility     "
                  f"{best_under(report.policies, {'per-kind-utility'}, budget)}")
            print("    learned, threshold     "
                  f"{best_under(report.policies, {'threshold'}, budget)}")
            print(f"    learned, utility       {best_under(report.policies, {'utility'}, budget)}")


if __name__ == "__main__":
    main()
