"""`yard feedback list`: recent feedback on production results (a skin over ``evidence``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from ..errors import InvalidInput
from ..evidence import list_feedback
from .common import catalogue, new_app, out, print_json

app = new_app("Feedback on production results: scores people and programs gave to answers.")


@app.command("list")
def list_(
    since: Annotated[str | None, typer.Option(help="ISO date or time, e.g. 2026-11-01.")] = None,
    team: Annotated[int | None, typer.Option(help="Only this team id's feedback.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Newest first: what was scored, by which team, and which model had answered."""
    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidInput(f"--since must be an ISO date or time, got {since!r}",
                               field="since") from None
    with catalogue() as (session, _):
        rows = list_feedback(session, team_id=team, since=start, limit=limit)
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table(title="feedback", header_style="bold")
    for column in ("when", "team", "subject", "node", "score", "models", "comment"):
        table.add_column(column)
    for r in rows:
        subject = f"request {r.request_id}" if r.request_id else f"job {r.job_id}"
        table.add_row(f"{r.updated_at:%Y-%m-%d %H:%M}", str(r.team_id or "-"), subject,
                      r.node or "-", f"{r.score:g}", ", ".join(r.models) or "-",
                      r.comment or "")
    out.print(table)
