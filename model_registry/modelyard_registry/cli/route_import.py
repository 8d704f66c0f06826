"""`yard route import OUTCOMES.jsonl --prompts PROMPTS.jsonl`: public outcome logs as evidence.

The whole file is parsed and checked (``routing.public_format``) before anything is written: a
bad line exits 2 naming the line and field, and the database is untouched.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from ..evidence import import_outcomes
from ..routing.public_format import read_outcomes
from .common import catalogue, err, out, print_json


def import_command(
    outcomes: Annotated[Path, typer.Argument(help="Outcomes JSONL (query_id, category, model, "
                                                  "score, cost_usd), RouterBench format.")],
    prompts: Annotated[Path, typer.Option(help="Prompts JSONL (query_id, category, prompt).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Store every outcome; items already imported are replaced (re-importing is idempotent).

    Models not in the catalogue are kept as external evidence: replay learns from them, the
    live router never routes to them.
    """
    with err.status("reading outcomes") if not as_json else nullcontext():
        parsed = read_outcomes(outcomes, prompts)
    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                        disable=as_json)
    with catalogue() as (session, _), progress:
        task = progress.add_task("importing", total=len(parsed))
        summary = import_outcomes(session, parsed, source=outcomes.name,
                                  on_progress=lambda done: progress.update(task, completed=done))
    if as_json:
        print_json({"items": summary.items, "outcomes": summary.outcomes,
                    "models": summary.models, "external_models": summary.external_models})
        return
    out.print(f"imported {summary.outcomes} outcomes of {summary.items} requests from "
              f"{len(summary.models)} models")
    if summary.external_models:
        out.print(f"external (not in the catalogue; replay only): "
                  f"{', '.join(summary.external_models)}")
