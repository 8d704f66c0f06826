"""`yard evals add|list`: the operator's own eval suites (a skin over ``evals.store``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from ..errors import InvalidInput
from ..evals.custom import Metric, SuiteConfig
from ..evals.store import SuiteCreate, add_suite, list_suites, read_items_file
from .common import catalogue, new_app, out, print_json

app = new_app("Eval suites: the built-in ones and your own (`yard models eval M --suite NAME`).")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Suite name (lowercase, e.g. refund-triage).")],
    kind: Annotated[str, typer.Option(help="Task kind it measures (built-in or your own).")],
    file: Annotated[Path, typer.Option(help='JSONL items: {"id", "input", "expected"}.')],
    metric: Annotated[str, typer.Option(help=f"One of: {', '.join(m.value for m in Metric)}.")],
    labels: Annotated[str | None, typer.Option(help="label: allowed labels, comma-separated.")
                      ] = None,
    tolerance: Annotated[float, typer.Option(help="numeric: absolute tolerance.")] = 0.0,
    judge_model: Annotated[str | None, typer.Option("--judge-model",
                                                    help="judge: catalogue model grading.")
                           ] = None,
    rubric: Annotated[str | None, typer.Option(help="judge: what a good answer does.")] = None,
    instructions: Annotated[str | None, typer.Option(help="System message before each input.")
                            ] = None,
    max_tokens: Annotated[int, typer.Option(help="Most tokens per answer.")] = 128,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Add (or replace) a suite; every line is checked first, a bad one writes nothing."""
    if metric not in {m.value for m in Metric}:
        raise InvalidInput(f"unknown metric {metric!r}; use one of: "
                           f"{', '.join(m.value for m in Metric)}", field="metric")
    try:
        config = SuiteConfig(
            labels=[x.strip() for x in labels.split(",") if x.strip()] if labels else None,
            tolerance=tolerance, judge_model=judge_model, rubric=rubric,
            instructions=instructions, max_tokens=max_tokens,
        )
    except ValueError as exc:
        raise InvalidInput(f"bad suite option: {exc}", field="config") from None
    items, locate = read_items_file(file)
    try:
        suite_in = SuiteCreate(name=name, kind=kind, metric=Metric(metric), config=config,
                               items=items)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None
    with catalogue() as (session, _):
        suite, added = add_suite(session, suite_in, locate=locate)
    if as_json:
        print_json(suite.model_dump(mode="json"))
        return
    out.print(f"{added} suite [bold]{suite.name}[/] ({suite.kind}, {suite.metric}, "
              f"{suite.n_items} items, version {suite.version})")


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every suite `yard models eval --suite` can run."""
    with catalogue() as (session, _):
        suites = list_suites(session)
    if as_json:
        print_json([s.model_dump(mode="json") for s in suites])
        return
    table = Table(title="eval suites", header_style="bold")
    for column in ("name", "kind", "metric", "items", "version", "built-in"):
        table.add_column(column)
    for s in suites:
        table.add_row(s.name, s.kind, s.metric, str(s.n_items), s.version,
                      "yes" if s.builtin else "")
    out.print(table)
