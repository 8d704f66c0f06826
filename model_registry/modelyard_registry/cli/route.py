"""`yard route explain`: which model a task would go to, and why every other one would not."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..router import explain as explain_decision
from ..taskspec import TaskSpec
from .common import catalogue, new_app, out, print_json

app = new_app("Ask the router: the cheapest adequate model for a task, explained.")


@app.command()
def explain(
    text: Annotated[str, typer.Argument(help="The prompt text (its tokens size the call).")],
    kind: Annotated[str, typer.Option(help="classify, extract, summarize, qa or chat.")],
    min_quality: Annotated[float, typer.Option(help="Measured score required, 0..1.")] = 0.0,
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
    """Print the decision: every candidate with its quality, expected cost and verdict.

    Exits 2 after printing when no model is adequate (the reason names the closest one).
    """
    spec = TaskSpec.build(
        kind=kind, min_quality=min_quality, max_output_tokens=max_tokens,
        needs_json_schema=json_schema, needs_tools=tools, latency_budget_s=latency_budget,
        pinned_model=pin, best_effort=best_effort, allow_unscored=allow_unscored,
    )
    with catalogue() as (session, settings):
        decision = explain_decision(session, settings, spec, text)
    if as_json:
        print_json(decision.to_dict())
    else:
        table = Table(title=f"route explain: {spec.kind}, min quality {min_quality:g}",
                      header_style="bold")
        for column in ("model", "quality", "cost $", "secs", "status"):
            table.add_column(column, no_wrap=True)
        table.add_column("reason", ratio=1, overflow="fold")
        style = {"chosen": "bold green", "adequate": "", "rejected": "dim"}
        for v in sorted(decision.candidates,
                        key=lambda v: ({"chosen": 0, "adequate": 1, "rejected": 2}[v.status],
                                       v.expected_cost_usd, v.name)):
            table.add_row(
                f"{v.name}\n[dim]{'local' if v.backend == 'llama_cpp' else 'remote'}[/dim]",
                "-" if v.quality is None else f"{v.quality:.2f}",
                f"{v.expected_cost_usd:.3g}",
                "-" if v.expected_latency_s is None else f"{v.expected_latency_s:.2f}",
                v.status, escape(v.reason), style=style[v.status],
            )
        out.print(table)
        if decision.chosen is not None:
            flag = " [yellow](best effort)[/yellow]" if decision.best_effort else ""
            out.print(f"{escape(decision.reason)}{flag}")
    if decision.chosen is None:
        typer.echo(f"Error: {decision.reason}", err=True)
        raise typer.Exit(2)
