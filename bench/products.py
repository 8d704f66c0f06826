"""The three products on a small gold set: routed graph vs every node pinned to the priciest model.

Builds a throw-away MODELYARD_HOME (never ~/.modelyard) with three models:

* ``smollm2-135m``: the bundled SmolLM2-135M-Instruct GGUF, local (llama.cpp, in-process);
* ``gemma3-270m``: the bundled Gemma-3-270M base GGUF (completion only), local;
* ``remote-smollm2``: a real ``llama_cpp.server`` subprocess on 127.0.0.1 (OpenAI-compatible, the
  API vLLM serves) with SmolLM2 behind it, registered with a per-token price (default $0.50 /
  $1.50 per 1M tokens in/out) to stand in for a bigger paid model.

Every model is scored first on the first ``--eval-limit`` items of each built-in suite (what
``yard models eval NAME --limit N`` does, via ``evaluate_model``), so routing has measured
quality and speed to work with.  The scores double as warm-up: every model is loaded before the
first timed job.

Then each product (ticket-triage, doc-summary, extract) runs on the first ``--items`` items of
its gold set (``bench/data/products_gold.jsonl``, written for this project) in two modes, item by
item so that machine-load swings hit both modes alike:

(a) routed: the product's own TaskSpecs (default job options, i.e. ``best_effort``);
(b) pinned: job option ``{"model": NAME}``, which pins every node (``nodes.node_spec``) to the
    most expensive model, by default ``remote-smollm2``: the stand-in for a big paid model.

The model-set table also shows the router's expected cost of a reference call (300 prompt tokens,
200 output tokens) per model.  Local models are priced by measured wall time x the machine cost
per hour, so on a slow or busy machine a local model can come out pricier than the remote; the
script then says so, and ``--pin auto`` pins to the router's priciest instead.

llama.cpp runs with ``--threads`` threads (default 1, in-process and in the server): on a busy
2-core machine two spinning threads per model run 3-5x slower than one.

Per product and mode it prints the mean wall latency per job, the cost per 1,000 jobs (the sum of
the job's ``Call.cost_usd`` rows, which the cascade writes for every attempt, escalations and
failed jobs included; cross-checked against the job's trace) and quality:

* ticket-triage: accuracy of category and of urgency against the gold labels (their mean);
* doc-summary: share of the gold key facts covered by summary + key points (the eval suites'
  ``fact_covered``: >= 2/3 of a fact's content words present);
* extract: share of gold fields whose value matches (the eval suites' ``score_extract``).

A job that raises scores 0 and still counts its billed calls.

    .venv/bin/python bench/products.py [--items 4] [--eval-limit 3] [--quick] [--pin auto]
                                       [--dump jobs.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from _server import start_server
from modelyard_agents.registry import PRODUCTS
from modelyard_registry import bundled
from modelyard_registry.db import session_scope
from modelyard_registry.evals.metrics import score_extract, score_summarize
from modelyard_registry.evals.runner import evaluate_model
from modelyard_registry.local_models import register_gguf
from modelyard_registry.remote_models import register_remote
from modelyard_registry.routing.candidates import MachineLimits
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.routing.decide import decide
from modelyard_registry.routing.snapshot import load_candidates
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.scores import Call
from modelyard_registry.settings import Settings
from modelyard_registry.taskspec import TaskSpec
from rich.console import Console
from rich.table import Table
from sqlmodel import col, select

GOLD = Path(__file__).with_name("data") / "products_gold.jsonl"
PRODUCT_ORDER = ("ticket-triage", "doc-summary", "extract")
REMOTE = "remote-smollm2"
console = Console(width=200)


def load_gold(limit: int) -> dict[str, list[dict[str, Any]]]:
    gold: dict[str, list[dict[str, Any]]] = {p: [] for p in PRODUCT_ORDER}
    with GOLD.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                gold[row["product"]].append(row)
    return {p: rows[:limit] for p, rows in gold.items()}


def quality(product: str, output: dict[str, Any] | None, gold: dict[str, Any]) -> dict[str, float]:
    """Per-job quality figures (0 for a job that failed)."""
    if product == "ticket-triage":
        if output is None:
            return {"category": 0.0, "urgency": 0.0, "quality": 0.0}
        cat = float(output["category"] == gold["category"])
        urg = float(output["urgency"] == gold["urgency"])
        return {"category": cat, "urgency": urg, "quality": (cat + urg) / 2}
    if product == "doc-summary":
        if output is None:
            return {"quality": 0.0}
        text = output["summary"] + "\n" + "\n".join(output["key_points"])
        return {"quality": score_summarize(text, {"key_facts": gold["key_facts"]})}
    if output is None:
        return {"quality": 0.0}
    return {"quality": score_extract(json.dumps(output["data"]), {"gold": gold})}


@dataclass
class ModeResult:
    latencies: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    scores: list[dict[str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    escalations: int = 0
    trace_mismatch: int = 0

    def mean(self, key: str) -> float:
        return sum(s[key] for s in self.scores) / len(self.scores) if self.scores else 0.0


def job_calls(url: str, job_id: str) -> list[Call]:
    with session_scope(url) as session:
        return list(session.exec(select(Call).where(col(Call.job_id) == job_id)).all())


def run_job(
    product: str, item: dict[str, Any], mode: str, options: dict[str, Any],
    cascade: Cascade, settings: Settings, result: ModeResult,
) -> None:
    """One job, run directly like tests/agents/conftest.py's product_ctx (no API, no worker)."""
    job_id = f"{mode}-{item['id']}"
    ctx = types.SimpleNamespace(job_id=job_id, team_id=None, progress=lambda _e: None,
                                cascade=cascade, settings=settings, options=options)
    start = time.perf_counter()
    output: dict[str, Any] | None
    try:
        output = PRODUCTS[product].run(item["input"], ctx)
    except Exception as exc:  # a failed job scores 0; its calls are still billed below
        output = None
        result.failures.append(f"{item['id']}: {type(exc).__name__}: {str(exc)[:120]}")
    result.latencies.append(time.perf_counter() - start)
    calls = job_calls(settings.effective_database_url, job_id)
    cost = sum(c.cost_usd for c in calls)
    result.costs.append(cost)
    result.calls.update(c.model_name for c in calls)
    result.escalations += sum(c.outcome != "accepted" for c in calls)
    if output is not None:
        traced = sum(e["cost_usd"] for e in output["trace"])
        result.trace_mismatch += abs(traced - cost) > 1e-9 + 1e-6 * cost
    scores = quality(product, output, item["gold"])
    result.scores.append(scores)
    result.records.append({
        "product": product, "mode": mode, "id": item["id"], "latency_s": result.latencies[-1],
        "cost_usd": cost, **scores, "gold": item["gold"],
        "output": {k: v for k, v in (output or {}).items() if k != "trace"},
        "calls": [[c.node, c.model_name, c.outcome, round(c.latency_s, 2), c.reason[:160]]
                  for c in calls],
    })


def build_catalogue(
    settings: Settings, args: argparse.Namespace
) -> tuple[list[str], subprocess.Popen[bytes]]:
    """Register the three models; returns their names and the server process to stop later."""
    smol = bundled.BUNDLED["smollm2-135m"]
    gemma = bundled.BUNDLED["gemma3-270m"]
    target = settings.models_dir / gemma.filename  # assembled as tests/conftest.py gemma_path
    bundled.assemble(gemma.parts(), target, gemma.sha256, None)
    server, base = start_server(smol.parts()[0], "smollm2", args.threads)
    with session_scope(settings.effective_database_url) as session:
        register_gguf(session, settings, name="smollm2-135m", path=smol.parts()[0],
                      capabilities=list(smol.capabilities), sha256=smol.sha256)
        register_gguf(session, settings, name="gemma3-270m", path=target,
                      capabilities=list(gemma.capabilities), sha256=gemma.sha256)
        register_remote(session, settings, name=REMOTE, base_url=base, served_name="smollm2",
                        response_format="json_object", price_in=args.price_in,
                        price_out=args.price_out)
    return ["smollm2-135m", "gemma3-270m", REMOTE], server


def score_models(
    settings: Settings, runtimes: RuntimeFactory, names: list[str], limit: int
) -> None:
    for name in names:
        t = time.perf_counter()
        with session_scope(settings.effective_database_url) as session:
            results = evaluate_model(session, runtimes, name, limit=limit)
        scores = ", ".join(f"{r.kind}={r.value:.2f}" for r in results)
        console.print(f"  scored {name:15s} {scores}  ({time.perf_counter() - t:.0f} s)")


def most_expensive(settings: Settings) -> tuple[str, Table]:
    """The model with the highest expected cost for a reference call, and the model-set table."""
    with session_scope(settings.effective_database_url) as session:
        candidates = load_candidates(session, settings)
    spec = TaskSpec.build(kind="chat", max_output_tokens=200)
    decision = decide(spec, 300, candidates, MachineLimits.from_settings(settings))
    expected = {v.name: v.expected_cost_usd for v in decision.candidates}
    table = Table(title="Model set (scores: first --eval-limit items of each suite)",
                  header_style="bold")
    for column in ("model", "backend", "price", "tokens/s", "scores", "expected $/ref call"):
        table.add_column(column)
    for c in candidates:
        price = (f"${settings.machine_cost_per_hour:.2f}/h of machine" if c.is_local
                 else f"${c.price_in:.2f}/${c.price_out:.2f} per 1M in/out")
        table.add_row(c.name, c.backend, price,
                      f"{c.tokens_per_s:.1f}" if c.tokens_per_s else "-",
                      " ".join(f"{k}={v:.2f}" for k, v in sorted(c.scores.items())),
                      f"{expected[c.name]:.2e}")
    return max(expected, key=lambda n: expected[n]), table


def report(results: dict[tuple[str, str], ModeResult], pinned_to: str) -> Table:
    table = Table(title=f"Products: routed vs every node pinned to {pinned_to}",
                  header_style="bold")
    for column in ("product", "mode", "jobs ok", "mean latency s", "$ / 1k jobs", "quality",
                   "detail", "calls by model", "not accepted"):
        table.add_column(column, justify="right" if column[0] in "j$mqn" else "left")
    for product in PRODUCT_ORDER:
        for mode in ("routed", "pinned"):
            r = results.get((product, mode))
            if r is None or not r.latencies:
                continue
            n = len(r.latencies)
            detail = {"doc-summary": "key-fact coverage", "extract": "field exact-match"}.get(
                product) or f"cat {r.mean('category'):.2f} / urg {r.mean('urgency'):.2f}"
            table.add_row(
                product, mode, f"{n - len(r.failures)}/{n}",
                f"{sum(r.latencies) / n:.2f}", f"{1000 * sum(r.costs) / n:.4f}",
                f"{r.mean('quality'):.2f}", detail,
                ", ".join(f"{m}:{k}" for m, k in r.calls.most_common()), str(r.escalations),
            )
        table.add_section()
    return table


def ratios(results: dict[tuple[str, str], ModeResult]) -> list[str]:
    lines = []
    for product in PRODUCT_ORDER:
        a, b = results.get((product, "routed")), results.get((product, "pinned"))
        if not a or not b or not a.latencies or not b.latencies:
            continue
        cost = sum(a.costs) / sum(b.costs) if sum(b.costs) else float("nan")
        lat = sum(a.latencies) / sum(b.latencies)
        lines.append(f"  {product:14s} routed/pinned: cost x{cost:.2f}, latency x{lat:.2f}, "
                     f"quality {a.mean('quality'):.2f} vs {b.mean('quality'):.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=4, help="gold items per product (max 8)")
    parser.add_argument("--eval-limit", type=int, default=3,
                        help="items per eval suite used to score each model")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 items per product, 2 eval items per suite")
    parser.add_argument("--products", default=",".join(PRODUCT_ORDER),
                        help="comma-separated subset of " + ", ".join(PRODUCT_ORDER))
    parser.add_argument("--price-in", type=float, default=0.50, help="remote USD per 1M in")
    parser.add_argument("--price-out", type=float, default=1.50, help="remote USD per 1M out")
    parser.add_argument("--threads", type=int, default=1,
                        help="llama.cpp threads (in-process and server); 1 is fastest on a "
                        "busy 2-core machine, where spinning threads contend")
    parser.add_argument("--pin", default=REMOTE,
                        help="model for the pinned mode; 'auto': the one the router expects "
                        f"to cost most for a reference call (default: {REMOTE})")
    parser.add_argument("--dump", type=Path, help="write every job (output, calls) as JSONL")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary home")
    args = parser.parse_args()
    if args.quick:
        args.items, args.eval_limit = min(args.items, 2), min(args.eval_limit, 2)
    products = [p for p in PRODUCT_ORDER if p in args.products.split(",")]

    home = Path(tempfile.mkdtemp(prefix="yard-products-"))
    os.environ["MODELYARD_HOME"] = str(home)  # products read get_settings(): never ~/.modelyard
    os.environ["MODELYARD_N_THREADS"] = str(args.threads)
    for var in ("DATABASE_URL", "MODELYARD_DATABASE_URL", "REDIS_URL", "MODELYARD_REDIS_URL"):
        os.environ.pop(var, None)
    settings = Settings()
    started = time.perf_counter()
    runtimes = RuntimeFactory(settings)
    server: subprocess.Popen[bytes] | None = None
    results: dict[tuple[str, str], ModeResult] = {}
    try:
        names, server = build_catalogue(settings, args)
        console.print(f"home {home}; scoring {', '.join(names)} on {args.eval_limit} items/suite")
        score_models(settings, runtimes, names, args.eval_limit)
        priciest, model_table = most_expensive(settings)
        pinned_to = priciest if args.pin == "auto" else args.pin
        if pinned_to != priciest:
            console.print(f"  note: the router expects {priciest} to cost most for the "
                          f"reference call, not {pinned_to} (local models are priced by their "
                          "measured wall time x machine cost)")
        cascade = Cascade(lambda: session_scope(settings.effective_database_url), settings,
                          runtimes)
        gold = load_gold(args.items)
        modes = {"routed": {}, "pinned": {"model": pinned_to}}
        bench_start = time.perf_counter()
        for product in products:
            t = time.perf_counter()
            for item in gold[product]:  # both modes per item: load swings hit both alike
                for mode, options in modes.items():
                    result = results.setdefault((product, mode), ModeResult())
                    run_job(product, item, mode, options, cascade, settings, result)
            console.print(f"  ran {product:14s} {len(gold[product])} items x 2 modes "
                          f"({time.perf_counter() - t:.0f} s)")
        bench_s = time.perf_counter() - bench_start
    finally:
        runtimes.close()
        if server is not None:
            server.terminate()
            server.wait(10)
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)

    if args.dump:
        with args.dump.open("w", encoding="utf-8") as f:
            for r in results.values():
                for record in r.records:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
    console.print()
    console.print(model_table)
    console.print(report(results, pinned_to))
    console.print("\n".join(ratios(results)))
    for (product, mode), r in results.items():
        for failure in r.failures:
            console.print(f"  failed job ({product}, {mode}) {failure}")
        if r.trace_mismatch:
            console.print(f"  ({product}, {mode}): {r.trace_mismatch} jobs whose trace cost "
                          "differs from their Call rows")
    console.print(
        f"\nmachine cost ${settings.machine_cost_per_hour:.2f}/h prices local models; "
        f"cost = sum of Call.cost_usd per job; latency = wall time per job "
        f"({os.cpu_count()} CPUs, shared). Products {bench_s:.0f} s, total "
        f"{time.perf_counter() - started:.0f} s."
    )
    console.print("command: " + shlex.join([os.path.relpath(sys.executable), *sys.argv]))


if __name__ == "__main__":
    main()
