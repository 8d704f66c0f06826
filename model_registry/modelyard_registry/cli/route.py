"""`yard route explain` (where a request would go, and why) and `yard route train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..routing.artefacts import RoutingVersionPublic, artefact_size
from ..routing.explain import explain as explain_decision
from ..routing.public import DecisionPublic
from ..routing.serving import ActivePredictor
from ..routing.training import train as train_predictor
from ..taskspec import TaskSpec
from .common import catalogue, new_app, out, print_json

app = new_app("Ask the router where a request goes and why; train it on your evidence.")


@app.command()
def explain(
    text: Annotated[str, typer.Argument(help="The prompt text (its tokens size the call).")],
    kind: Annotated[str, typer.Option(help="classify, extract, summarize, qa, chat or your own.")],
    min_quality: Annotated[
        float, typer.Option(help="Quality required, 0..1: predicted where there is evidence.")
    ] = 0.0,
    max_cost_ratio: Annotated[float | None, typer.Option(
        help="A cost budget instead: at most this fraction of always-best's cost (0..1].")
    ] = None,
    max_tokens: Annotated[int, typer.Option(help="Most output tokens.")] = 256,
    json_schema: Annotated[
        bool, typer.Option("--json-schema", help="The output must follow a JSON schema.")
    ] = False,
    tools: Annotated[bool, typer.Option("--tools", help="The call passes tools.")] = False,
    latency_budget: Annotated[
        float | None, typer.Option(help="Reject models expected to take longer (seconds).")
    ] = None,
    pin: Annotated[str | None, typer.Option(help="Use only this model.")] = None,
    best_effort: Annotated[
        bool, typer.Option("--best-effort", help="Take the best model that fits if none is.")
    ] = False,
    allow_unscored: Annotated[
        bool, typer.Option("--allow-unscored", help="Unscored models count as adequate.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON with keys chosen, reason, candidates.")
    ] = False,
) -> None:
    """Print each candidate's predicted quality, evidence, score, expected cost and verdict.

    The nearest evaluated examples behind the pick follow the table.

    Exits 2 after printing when no model is adequate (the reason names the closest one).
    """
    spec = TaskSpec.build(
        kind=kind, min_quality=min_quality, max_cost_ratio=max_cost_ratio,
        max_output_tokens=max_tokens, needs_json_schema=json_schema, needs_tools=tools,
        latency_budget_s=latency_budget,
        pinned_model=pin, best_effort=best_effort, allow_unscored=allow_unscored,
    )
    with catalogue() as (session, settings):
        predictor = ActivePredictor(settings, check_interval_s=0)
        decision = explain_decision(session, settings, spec, text, predictor=predictor)
    public = DecisionPublic.of(decision, predictor.version)
    if as_json:
        print_json(public.model_dump(mode="json"))
    else:
        basis = (f"predicted by {public.predictor_version}, {public.rule}"
                 if public.basis == "prediction" else "per-kind scores")
        table = Table(title=f"route explain: {spec.kind}, min quality {min_quality:g} ({basis})",
                      header_style="bold")
        for column in ("model", "predicted", "evidence", "score", "cost $", "secs", "status"):
            table.add_column(column, no_wrap=True)
        table.add_column("reason", ratio=1, overflow="fold")
        style = {"chosen": "bold green", "adequate": "", "rejected": "dim"}
        for v in sorted(public.candidates,
                        key=lambda v: ({"chosen": 0, "adequate": 1, "rejected": 2}[v.status],
                                       v.expected_cost_usd, v.name)):
            table.add_row(
                f"{v.name}\n[dim]{'local' if v.backend == 'llama_cpp' else 'remote'}[/dim]",
                "-" if v.predicted_quality is None else f"{v.predicted_quality:.2f}",
                "-" if v.evidence is None else f"{v.evidence:.1f}",
                "-" if v.score is None else f"{v.score:.2f}",
                f"{v.expected_cost_usd:.3g}",
                "-" if v.expected_latency_s is None else f"{v.expected_latency_s:.2f}",
                v.status, escape(v.reason), style=style[v.status],
            )
        out.print(table)
        if decision.chosen is not None:
            flag = " [yellow](best effort)[/yellow]" if decision.best_effort else ""
            out.print(f"{escape(decision.reason)}{flag}")
            chosen = next(c for c in public.candidates if c.name == public.chosen)
            for n in chosen.neighbours:
                out.print(f"  [dim]near {escape(n.item_id)} (similarity {n.similarity:.2f}, "
                          f"score {n.score:.2f}): {escape(n.text[:100])}[/dim]")
    if decision.chosen is None:
        typer.echo(f"Error: {decision.reason}", err=True)
        raise typer.Exit(2)


@app.command()
def train(
    as_json: Annotated[bool, typer.Option("--json", help="The new version as JSON.")] = False,
    export: Annotated[Path | None, typer.Option(
        help="Also write the predictor's files (manifest.json, arrays.npz, items.jsonl) here.")
    ] = None,
) -> None:
    """Train a routing predictor on every stored outcome; the new version becomes active.

    Evidence: per-item eval results, validator verdicts and feedback on production calls,
    imported outcome logs.  The version and its artefact are stored in the database, where
    every API process and worker finds it.  Exits 2 when there is no evidence yet.
    """
    with catalogue() as (session, settings):
        row = train_predictor(session, settings, export=export)
        public = RoutingVersionPublic.of(row, artefact_bytes=artefact_size(session, row.version),
                                         path=str(export) if export else None)
    if as_json:
        print_json(public.model_dump(mode="json"))
        return
    metrics = ", ".join(f"{k} {v:g}" for k, v in public.metrics.items())
    out.print(f"trained {public.version} ({public.method}, {public.embedder}) on "
              f"{public.outcomes} outcomes over {public.items} requests, "
              f"{len(public.models)} models, kinds: {', '.join(public.kinds)}")
    out.print(f"dev split: {metrics}")
    if public.budget_curve:
        ends = sorted(public.budget_curve, key=lambda p: p["cost_ratio"])
        out.print(f"cost budgets (--max-cost-ratio) served from {ends[0]['cost_ratio']:.3f} "
                  f"(quality {ends[0]['quality_ratio']:.3f}) to {ends[-1]['cost_ratio']:.3f} "
                  f"(quality {ends[-1]['quality_ratio']:.3f}) of always-best, cross-validated")
    else:
        out.print("cost budgets: not served (too little evidence graded for two or more models "
                  "to measure the curve); min_quality decides")
    size = f"{(public.artefact_bytes or 0) / 2**20:.1f} MB"
    where = f" and exported to {public.path}" if public.path else ""
    out.print(f"stored in the database ({size}){where}; active now")
