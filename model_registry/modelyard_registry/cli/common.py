"""What every command shares: settings, a catalogue session, consoles and error reporting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from sqlmodel import Session
from typer import _click as click
from typer.core import TyperGroup

from ..db import session_scope
from ..errors import ModelyardError
from ..settings import Settings, get_settings

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class YardGroup(TyperGroup):
    """Turns a ``ModelyardError`` anywhere below into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            typer.echo(f"Error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=YardGroup, help=help_text, no_args_is_help=True, pretty_exceptions_enable=False
    )


@contextmanager
def catalogue() -> Iterator[tuple[Session, Settings]]:
    settings = get_settings()
    with session_scope(settings.effective_database_url) as session:
        yield session, settings


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def human_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:,.0f} MB" if n < 2**30 else f"{n / 2**30:.1f} GB"
