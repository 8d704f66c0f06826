"""The three products over the local ladder: routed vs every node pinned to the largest rung, and
to the smallest.

Builds a throw-away MODELYARD_HOME (never ~/.modelyard) holding the local ladder, each rung a
llama.cpp model priced by its measured speed x the machine's cost per hour:

* ``smollm2-135m`` (SmolLM2-135M-Instruct Q4_1), ``qwen2.5-coder-0.5b`` and ``qwen2.5-coder-1.5b``
  (Qwen2.5-Coder-Instruct Q4_K_M), pulled as ``yard models pull`` does (``--models-dir`` reuses
  GGUF files joined before instead of copying them again).

No duplicated weights stand in for a paid "remote" model any more: the comparison is the ladder
itself.  Every model is scored first on ``--eval-limit`` items of each built-in suite, the
same spread sample the quick evaluation at pull time takes (``evaluate_model``), so routing has
measured quality, speed and answer lengths to work with; the scores double as warm-up.  The
router judges each score by the low end of its 95% interval over those items
(``routing.confidence``); the model-set table shows both.

Then each product (ticket-triage, doc-summary, extract) runs on the first ``--items`` items of
its gold set (``bench/data/products_gold.jsonl``, 60 per product) in three modes, item by item so
that machine-load swings hit every mode alike (the order reversed every other item, ``ordered``):

(a) routed: the product's own TaskSpecs (default job options, i.e. ``best_effort``);
(b) largest: job option ``{"model": <largest rung>}``, which pins every node to it;
(c) smallest: every node pinned to the smallest rung;
(d) middle (only with ``--modes ...,middle``): every node pinned to the middle rung (Qwen-0.5B).

Per product and mode it prints the p50 wall latency per job, the cost per 1,000 jobs (the sum of
the job's ``Call.cost_usd`` rows, which the cascade writes for every attempt, escalations and
failed jobs included) and the product's one quality metric:

* ticket-triage: category accuracy against the gold label (urgency accuracy shown beside);
* doc-summary: ``score_doc_summary`` (evals/metrics.py), over units (the summary's sentences and
  the key points): key-fact coverage of summary + key points (``fact_covered`` at exactly 2/3
  of a fact's content words, "%" read as "percent") x faithfulness (share of units the document
  backs: all their numbers and mid-sentence capitalised words, and at least half their content
  words, occur in it) x novelty (share of units not repeating an earlier unit of their part) x
  brevity (``min(1, budget / summary words)``, budget = the smaller of ``target_words`` and half
  the document).  Key-fact coverage alone (``key_fact_coverage``, the metric before) is shown
  beside: alone it rewarded copying, padding and repetition and ignored invented facts;
* extract: share of gold fields whose value matches (the eval suites' ``score_extract``).

A job that raises scores 0 and still counts its billed calls.  ``--from-dump`` scores every
job's output again with today's metrics.

    .venv/bin/python bench/products.py [--items 4] [--eval-limit 10] [--eval-more KIND=N] [--quick]
        [--models-dir DIR] [--products ticket-triage] [--modes routed,largest,smallest,middle]
        [--dump jobs.jsonl] [--from-dump jobs.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from modelyard_agents.contract import RunContext
from modelyard_agents.registry import PRODUCTS
from modelyard_registry import bundled
from modelyard_registry.db import session_scope
from modelyard_registry.evals.metrics import (
    key_fact_coverage,
    score_doc_summary,
    score_extract,
)
from modelyard_registry.evals.runner import evaluate_model
from modelyard_registry.local_models import register_gguf
from modelyard_registry.routing.candidates import MachineLimits
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.routing.decide import decide
from modelyard_registry.routing.options import RoutingOptions
from modelyard_registry.routing.snapshot import load_candidates
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.scores import Call, Score, current_scores
from modelyard_registry.settings import Settings
from modelyard_registry.taskspec import TaskSpec
from rich.console import Console
from rich.table import Table
from sqlmodel import col, select

GOLD = Path(__file__).with_name("data") / "products_gold.jsonl"
PRODUCT_ORDER = ("ticket-triage", "doc-summary", "extract")
LADDER = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
MODES = ("routed", "largest", "middle", "smallest")
DEFAULT_MODES = ("routed", "largest", "smallest")
PINS = {"largest": LADDER[-1], "middle": LADDER[1], "smallest": LADDER[0]}  # mode -> pinned rung
console = Console(width=200)


def load_gold(limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
    gold: dict[str, list[dict[str, Any]]] = {p: [] for p in PRODUCT_ORDER}
    with GOLD.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                gold[row["product"]].append(row)
    return {p: rows[:limit] for p, rows in gold.items()}


def quality(product: str, output: dict[str, Any] | None, item: dict[str, Any]) -> dict[str, float]:
    """Per-job quality figures (0 for a job that failed); ``quality`` is the product's metric."""
    gold = item["gold"]
    if product == "ticket-triage":
        if output is None:
            return {"category": 0.0, "urgency": 0.0, "quality": 0.0}
        cat = float(output["category"] == gold["category"])
        urg = float(output["urgency"] == gold["urgency"])
        return {"category": cat, "urgency": urg, "quality": cat}
    if product == "doc-summary":
        if output is None:
            return {"coverage": 0.0, "quality": 0.0}
        text = output["summary"] + "\n" + "\n".join(output["key_points"])
        score = score_doc_summary(output["summary"], output["key_points"], item["input"]["text"],
                                  gold["key_facts"], item["input"]["target_words"])
        return {"coverage": key_fact_coverage(text, gold["key_facts"]),
                "quality": score.value, "faithfulness": score.faithfulness,
                "novelty": score.novelty, "brevity": score.brevity}
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
        """Mean over the jobs that have the figure (a failed job has no faithfulness, ...)."""
        values = [s[key] for s in self.scores if key in s]
        return sum(values) / len(values) if values else 0.0


def job_calls(url: str, job_id: str) -> list[Call]:
    with session_scope(url) as session:
        return list(session.exec(select(Call).where(col(Call.job_id) == job_id)).all())


def run_job(
    product: str, item: dict[str, Any], mode: str, options: dict[str, Any],
    cascade: Cascade, settings: Settings, result: ModeResult,
) -> None:
    """One job, run directly like tests/agents/conftest.py's product_ctx (no API, no worker)."""
    job_id = f"{mode}-{item['id']}"
    ctx = RunContext(job_id=job_id, cascade=cascade, settings=settings,
                     options=RoutingOptions(**options))
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
    scores = quality(product, output, item)
    result.scores.append(scores)
    result.records.append({
        "product": product, "mode": mode, "id": item["id"], "latency_s": result.latencies[-1],
        "cost_usd": cost, **scores, "gold": item["gold"],
        "output": {k: v for k, v in (output or {}).items() if k != "trace"},
        "calls": [[c.node, c.model_name, c.outcome, round(c.latency_s, 2), c.reason[:160],
                   c.prompt_tokens, c.completion_tokens, c.ttft_s] for c in calls],
    })


def build_catalogue(settings: Settings, args: argparse.Namespace) -> list[str]:
    """Register the ladder (smallest first); reuse joined files from ``--models-dir``."""
    with session_scope(settings.effective_database_url) as session:
        for name in LADDER:
            model = bundled.BUNDLED[name]
            joined = args.models_dir / model.filename if args.models_dir else None
            if joined is not None and joined.exists():
                register_gguf(session, settings, name=name, path=joined,
                              capabilities=bundled.capabilities_of(model), sha256=model.sha256)
            else:
                bundled.pull(session, settings, name)
    return list(LADDER)


def score_models(
    settings: Settings, runtimes: RuntimeFactory, names: list[str], limit: int,
    more: dict[str, int] | None = None,
) -> None:
    """Every suite on ``limit`` items, then each kind in ``more`` again on its own item count.

    The later, larger sample's Score is the one routing reads (the newest per model and kind),
    as after an operator's ``yard models eval MODEL --suite KIND``.
    """
    for name in names:
        t = time.perf_counter()
        with session_scope(settings.effective_database_url) as session:
            results = evaluate_model(session, runtimes, name, limit=limit)
            for kind, n in (more or {}).items():
                results += evaluate_model(session, runtimes, name, kinds=[kind], limit=n)
        scores = ", ".join(f"{r.kind}={r.value:.2f}" for r in results)
        console.print(f"  scored {name:15s} {scores}  ({time.perf_counter() - t:.0f} s)")


def kind_limits(values: list[str]) -> dict[str, int]:
    """``--eval-more summarize=30`` as ``{"summarize": 30}``; ValueError naming a bad one."""
    limits = {}
    for value in values:
        kind, _, n = value.partition("=")
        if not kind or not n.isdigit() or int(n) < 1:
            raise ValueError(f"--eval-more takes KIND=N (N >= 1), got {value!r}")
        limits[kind] = int(n)
    return limits


def most_expensive(settings: Settings) -> tuple[str, Table]:
    """The model with the highest expected cost for a reference call, and the model-set table."""
    with session_scope(settings.effective_database_url) as session:
        candidates = load_candidates(session, settings)
    spec = TaskSpec.build(kind="chat", max_output_tokens=200)
    decision = decide(spec, 300, candidates, MachineLimits.from_settings(settings))
    expected = {v.name: v.expected_cost_usd for v in decision.candidates}
    with session_scope(settings.effective_database_url) as session:
        rows = current_scores(session.exec(select(Score)).all())  # the rows routing reads
        measured = {key: (r.value, r.n) for key, r in rows.items()}
    table = Table(title="Model set (scores: mean over a spread sample of --eval-limit items per "
                  "suite -> the low end of its 95% interval, which routing judges)",
                  header_style="bold")
    for column in ("model", "backend", "price", "tokens/s", "scores (mean -> routed)",
                   "expected $/ref call"):
        table.add_column(column)
    for c in candidates:
        price = (f"${settings.machine_cost_per_hour:.2f}/h of machine" if c.is_local
                 else f"${c.price_in:.2f}/${c.price_out:.2f} per 1M in/out")
        table.add_row(c.name, c.backend, price,
                      f"{c.tokens_per_s:.1f}" if c.tokens_per_s else "-",
                      " ".join(f"{k}={measured[(c.name, k)][0]:.2f}->{v:.2f}"
                               f"/{measured[(c.name, k)][1]}" for k, v in sorted(c.scores.items())),
                      f"{expected[c.name]:.2e}")
    return max(expected, key=lambda n: expected[n]), table


def p50(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def report(results: dict[tuple[str, str], ModeResult], pins: dict[str, str]) -> Table:
    table = Table(title="Products: routed vs every node pinned to one rung ("
                  + ", ".join(f"{mode}: {name}" for mode, name in pins.items()) + ")",
                  header_style="bold")
    for column in ("product", "mode", "jobs ok", "p50 latency s", "$ / 1k jobs", "quality",
                   "detail", "calls by model", "not accepted"):
        table.add_column(column, justify="right" if column[0] in "jp$qn" else "left")
    for product in PRODUCT_ORDER:
        for mode in MODES:
            r = results.get((product, mode))
            if r is None or not r.latencies:
                continue
            n = len(r.latencies)
            detail = {
                "ticket-triage": f"category (urgency {r.mean('urgency'):.2f})",
                "doc-summary": f"old coverage {r.mean('coverage'):.2f}; answers: faithful "
                f"{r.mean('faithfulness'):.2f} novel {r.mean('novelty'):.2f} brief "
                f"{r.mean('brevity'):.2f}",
                "extract": "field exact-match"}[product]
            table.add_row(
                product, mode, f"{n - len(r.failures)}/{n}",
                f"{p50(r.latencies):.2f}", f"{1000 * sum(r.costs) / n:.4f}",
                f"{r.mean('quality'):.2f}", detail,
                ", ".join(f"{m}:{k}" for m, k in r.calls.most_common()), str(r.escalations),
            )
        table.add_section()
    return table


def ratios(results: dict[tuple[str, str], ModeResult]) -> list[str]:
    lines = []
    for product in PRODUCT_ORDER:
        a, b = results.get((product, "routed")), results.get((product, "largest"))
        if not a or not b or not a.latencies or not b.latencies:
            continue
        cost = sum(a.costs) / sum(b.costs) if sum(b.costs) else float("nan")
        quality = a.mean("quality") / b.mean("quality") if b.mean("quality") else float("nan")
        lines.append(f"  {product:14s} routed/largest: quality x{quality:.2f} "
                     f"({a.mean('quality'):.2f} vs {b.mean('quality'):.2f}), cost x{cost:.2f}, "
                     f"p50 latency x{p50(a.latencies) / p50(b.latencies):.2f} "
                     "(target: quality >= 0.95x at cost <= 0.6x)")
    return lines


def from_dump(path: Path) -> None:
    """Print the tables from a ``--dump`` file, e.g. of a run cut short (whole items only).

    Quality is scored again from each job's output and its gold item, so a dump written before a
    metric changed reads with today's metrics.
    """
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    items = {(p, item["id"]): item for p, rows in load_gold().items() for item in rows}
    per_item = Counter((r["product"], r["id"]) for r in records)
    n_modes = len({r["mode"] for r in records})
    results: dict[tuple[str, str], ModeResult] = {}
    for r in records:
        if per_item[(r["product"], r["id"])] < n_modes:
            continue  # an item whose modes did not all run would favour the modes that did
        result = results.setdefault((r["product"], r["mode"]), ModeResult())
        result.latencies.append(r["latency_s"])
        result.costs.append(r["cost_usd"])
        item = items[(r["product"], r["id"])]
        result.scores.append(quality(r["product"], r["output"] or None, item))
        if not r["output"]:
            result.failures.append(str(r["id"]))
        result.calls.update(c[1] for c in r["calls"])
        result.escalations += sum(c[2] != "accepted" for c in r["calls"])
    counts = {p: sum(1 for (q, _), k in per_item.items() if q == p and k >= n_modes)
              for p in PRODUCT_ORDER}
    console.print(f"{path}: items per mode " + ", ".join(f"{p} {n}" for p, n in counts.items()
                                                         if n))
    console.print(report(results, PINS))
    console.print("\n".join(ratios(results)))


def ordered(modes: list[tuple[str, dict[str, Any]]], n: int) -> list[tuple[str, dict[str, Any]]]:
    """The modes in the order item ``n`` runs them: as listed, reversed on every other item.

    A llama.cpp model skips the prompt it evaluated last (their longest common prefix), so a mode
    sending the same prompt to the same model right after another mode pays no prefill; local cost
    is wall time x the machine's price.  In one fixed order the later of two modes on the 1.5B was
    10-50% cheaper on one-chunk doc-summary items (#12).  Reversing every other item gives each of
    any two modes the later place equally often (rotating does not, with three modes).
    """
    return modes if n % 2 else modes[::-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=4, help="gold items per product (max 60)")
    parser.add_argument("--eval-more", action="append", default=[], metavar="KIND=N",
                        help="score KIND again on N items after --eval-limit (routing reads it)")
    parser.add_argument("--eval-limit", type=int, default=10,
                        help="items per eval suite used to score each model (a spread sample, "
                        "as at pull time)")
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES),
                        help="comma-separated subset of " + ", ".join(MODES))
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 items per product, 2 eval items per suite")
    parser.add_argument("--products", default=",".join(PRODUCT_ORDER),
                        help="comma-separated subset of " + ", ".join(PRODUCT_ORDER))
    parser.add_argument("--threads", type=int, default=1,
                        help="llama.cpp threads; 1 is fastest on a busy 2-core machine, where "
                        "spinning threads contend")
    parser.add_argument("--models-dir", type=Path,
                        help="a folder holding the joined ladder GGUFs (e.g. ~/.modelyard/models)"
                        ", registered in place instead of copied")
    parser.add_argument("--dump", type=Path, help="write every job (output, calls) as JSONL")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary home")
    parser.add_argument("--from-dump", type=Path,
                        help="only print the tables from a --dump file (a run cut short too)")
    args = parser.parse_args()
    try:
        more = kind_limits(args.eval_more)
    except ValueError as exc:
        parser.error(str(exc))
    if args.from_dump:
        from_dump(args.from_dump)
        return
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
    results: dict[tuple[str, str], ModeResult] = {}
    dump = None
    try:
        names = build_catalogue(settings, args)
        console.print(f"home {home}; scoring {', '.join(names)} on {args.eval_limit} items/suite")
        score_models(settings, runtimes, names, args.eval_limit, more)
        _priciest, model_table = most_expensive(settings)
        chosen_modes = [m for m in MODES if m in args.modes.split(",")]
        pins = {m: PINS[m] for m in chosen_modes if m in PINS}
        cascade = Cascade(lambda: session_scope(settings.effective_database_url), settings,
                          runtimes)
        gold = load_gold(args.items)
        modes: dict[str, dict[str, Any]] = {
            m: ({"model": pins[m]} if m in pins else {}) for m in chosen_modes}
        bench_start = time.perf_counter()
        # Each job's record is written as soon as it ends, so a run cut short keeps its jobs.
        if args.dump:
            dump = args.dump.open("w", encoding="utf-8")
        for product in products:
            t = time.perf_counter()
            for n, item in enumerate(gold[product], 1):  # every mode per item: load hits all
                for mode, options in ordered(list(modes.items()), n):
                    result = results.setdefault((product, mode), ModeResult())
                    run_job(product, item, mode, options, cascade, settings, result)
                    if dump is not None:
                        dump.write(json.dumps(result.records[-1], ensure_ascii=False) + "\n")
                        dump.flush()
                console.print(f"  {product} item {n}/{len(gold[product])} "
                              f"({time.perf_counter() - t:.0f} s)")
            console.print(f"  ran {product:14s} {len(gold[product])} items x {len(modes)} modes "
                          f"({time.perf_counter() - t:.0f} s)")
        bench_s = time.perf_counter() - bench_start
    finally:
        if dump is not None:
            dump.close()
        runtimes.close()
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)

    console.print()
    console.print(model_table)
    console.print(report(results, pins))
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
