"""`yard route replay`: how the learned router would have done on recorded outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import InvalidInput
from ..routing.embed import Embedder, HashedNgramEmbedder, embedder_by_name
from ..routing.outcomes import Outcome
from ..routing.public_format import read_outcomes
from ..routing.replay import ReplayReport, replay, split
from .common import catalogue, err, out, print_json


def _embedder(name: str) -> Embedder:
    return HashedNgramEmbedder() if name == "hashed" else embedder_by_name(
        "wordllama-l2-supercat-256" if name == "static" else name)


def _from_db(since: str | None) -> list[Outcome]:
    from ..evidence import load_outcomes

    when = None
    if since is not None:
        try:
            when = datetime.fromisoformat(since)
        except ValueError as exc:
            raise InvalidInput(f"--since: not an ISO date: {since!r}", field="since") from exc
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    with catalogue() as (session, _):
        rows = load_outcomes(session, since=when, include_external=True)
    if not rows:
        raise InvalidInput("no stored evidence" + (f" since {since}" if since else "")
                           + ": run evals, import outcomes (yard route import) or give feedback",
                           field="since" if since else "from_db")
    return rows


def _print(report: ReplayReport) -> None:
    table = Table(title=f"replay: {report.train_items} items trained, {report.test_items} "
                        f"routed; ratios against always {report.baseline}",
                  header_style="bold")
    for column in ("policy", "cost ratio", "quality ratio", "quality 95% CI", "$ / request"):
        table.add_column(column, no_wrap=column != "policy")
    for p in report.policies:
        table.add_row(p.name, f"{p.cost_ratio:.3f}", f"{p.quality_ratio:.3f}",
                      f"{p.quality_ci[0]:.3f} .. {p.quality_ci[1]:.3f}", f"{p.cost_usd:.3g}",
                      style="dim" if p.upper_bound else "")
    out.print(table)
    out.print(f"predictor: {report.method} over {report.embedder}; expected calibration "
              f"error on the routed items {report.calibration_error:.3f}. Dim rows are upper "
              "bounds (they read the recorded grade).")


def replay_command(
    outcomes: Annotated[Path | None, typer.Argument(
        help="Outcomes jsonl (RouterBench format: query_id, category, model, score, cost_usd)."
    )] = None,
    prompts: Annotated[Path | None, typer.Option(
        help="Prompts jsonl for OUTCOMES (query_id, category, prompt).")] = None,
    train: Annotated[Path | None, typer.Option(
        help="Train on this outcomes file and report on OUTCOMES instead of splitting.")] = None,
    train_prompts: Annotated[Path | None, typer.Option(help="Prompts for --train.")] = None,
    train_frac: Annotated[float, typer.Option(help="Share of items to train on.")] = 0.8,
    seed: Annotated[int, typer.Option(help="Seed of the split and the bootstrap.")] = 0,
    baseline: Annotated[str | None, typer.Option(
        help="Model the ratios are against (default: best mean training quality).")] = None,
    method: Annotated[str, typer.Option(help="Predictor: knn or logistic.")] = "knn",
    embedder: Annotated[str, typer.Option(help="hashed or static.")] = "hashed",
    from_db: Annotated[bool, typer.Option(
        "--from-db", help="Replay this platform's own evidence (evals, calls, feedback).")] = False,
    since: Annotated[str | None, typer.Option(help="With --from-db: evidence newer than "
                                                   "this ISO date.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="JSON: {baseline, policies: [{name, threshold, cost_ratio, "
                       "quality_ratio, quality_ci, ...}]}.")] = False,
) -> None:
    """Train the predictor on one part of the outcomes, route the rest, compare policies.

    Prints cost and quality of always-best, always-cheapest, the per-kind rule, the learned
    router (threshold and utility rules), the cascade and the oracle, as ratios against
    always-best with 95% bootstrap intervals. A malformed file exits 2 naming line and field.
    """
    if method not in ("knn", "logistic"):
        raise InvalidInput("--method must be knn or logistic", field="method")
    if from_db:
        rows = _from_db(since)
        train_rows, test_rows = split(rows, train_frac, seed)
    else:
        if outcomes is None or prompts is None:
            raise InvalidInput("give OUTCOMES and --prompts (or --from-db)", field="outcomes")
        rows = read_outcomes(outcomes, prompts)
        if train is not None:
            if train_prompts is None:
                raise InvalidInput("--train needs --train-prompts", field="train_prompts")
            train_rows, test_rows = read_outcomes(train, train_prompts), rows
        else:
            train_rows, test_rows = split(rows, train_frac, seed)
    with err.status("replay") as status:
        report = replay(train_rows, test_rows, _embedder(embedder), baseline=baseline, seed=seed,
                        progress=lambda message: status.update(message), method=method)
    if as_json:
        print_json(report.to_json())
    else:
        _print(report)
