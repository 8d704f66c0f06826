"""`yard models eval NAME`: run built-in or custom suites on a model and store its Scores."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from .. import catalog
from ..evals import SUITE_KINDS, evaluate_model, plan_suites
from ..runtimes import RuntimeFactory
from .common import catalogue, out, print_json


def eval_model(
    name: Annotated[str, typer.Argument(help="Catalogue name of the model.")],
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", help=f"Suite to run (repeatable): {', '.join(SUITE_KINDS)} "
                     "or a custom suite's name (`yard evals list`)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(help="Only N items of each suite, a fixed spread sample (versioned apart)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Measure quality (with a 95% interval) and speed per task kind; store them as Scores."""
    with catalogue() as (session, settings):
        catalog.get_model(session, name)
        suites = plan_suites(suite, limit, session)  # bad input fails before any model loads
        runtimes = RuntimeFactory(settings)
        progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=out, disable=as_json,
        )
        tasks = {s.suite_name: progress.add_task(f"{name} {s.suite_name}", total=len(s.items))
                 for s in suites}
        try:
            with progress:
                results = evaluate_model(
                    session, runtimes, name, kinds=[s.suite_name for s in suites], limit=limit,
                    on_item=lambda suite, done, _total: progress.update(tasks[suite],
                                                                        completed=done),
                )
        finally:
            runtimes.close()
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    table = Table(title=f"{name}: measured quality and speed", header_style="bold")
    for column in ("kind", "metric", "value", "95% CI", "n", "tokens/s", "s/item", "suite"):
        table.add_column(column)
    for r in results:
        d = r.to_dict()
        table.add_row(
            r.kind, r.metric, f"{r.value:.3f}", f"{d['ci_low']:.2f}-{d['ci_high']:.2f}",
            str(r.n), f"{r.tokens_per_s:.1f}" if r.tokens_per_s else "-",
            f"{r.latency_s:.2f}" if r.latency_s is not None else "-", r.suite_version,
        )
    out.print(table)
