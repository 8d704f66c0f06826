"""`yard generate`: one call to one model, with the figures that matter printed after it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import catalog
from ..catalog import Capability
from ..errors import InvalidInput
from ..runtimes import GenerationRequest, RuntimeFactory
from ..schema_limits import check_schema
from .common import catalogue, err, print_json


def load_schema(path: Path) -> dict[str, Any]:
    try:
        schema = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidInput(f"cannot read schema file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"schema file {path} is not valid JSON: {exc.msg}") from exc
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput(f"schema file {path} is not a valid JSON Schema: {exc.message}") from exc
    try:
        check_schema(schema, "$")
    except InvalidInput as exc:
        raise InvalidInput(f"schema file {path} at {exc.field}: {exc.message}",
                           field="--json-schema") from None
    return dict(schema)


def generate(
    name: Annotated[str, typer.Argument(help="Catalogue name of the model.")],
    prompt: Annotated[str, typer.Argument(help="The prompt (a user message for chat models).")],
    json_schema: Annotated[
        Path | None, typer.Option("--json-schema", help="Constrain output to this JSON Schema.")
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens to generate.")] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.0,
    stream: Annotated[bool, typer.Option("--stream", help="Print tokens as they arrive.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object with figures.")] = False,
) -> None:
    """Run one generation and report tokens in/out, time to first token and tokens/s."""
    schema = load_schema(json_schema) if json_schema else None
    with catalogue() as (session, settings):
        entry = catalog.get_model(session, name)
    if not entry.enabled:
        raise InvalidInput(f"model {name!r} is disabled (yard models enable {name})")
    if Capability.chat in entry.capabilities:
        request = GenerationRequest(
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens, temperature=temperature, json_schema=schema,
        )
    else:
        request = GenerationRequest(
            prompt=prompt, max_tokens=max_tokens, temperature=temperature, json_schema=schema
        )
    factory = RuntimeFactory(settings)
    try:
        runtime = factory.for_entry(entry)
        completion = None
        for event in runtime.stream(request):
            if event.completion is not None:
                completion = event.completion
            elif stream and not as_json:
                sys.stdout.write(event.text)
                sys.stdout.flush()
    finally:
        factory.close()
    assert completion is not None
    if as_json:
        print_json({
            "text": completion.text,
            "model": entry.name,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "ttft_s": round(completion.ttft_s, 4),
            "tokens_per_s": round(completion.tokens_per_s, 2),
            "finish_reason": completion.finish_reason,
        })
        return
    if stream:
        sys.stdout.write("\n")
    else:
        typer.echo(completion.text)
    err.print(
        f"[dim]{entry.name}: {completion.prompt_tokens} tokens in, "
        f"{completion.completion_tokens} out, TTFT {completion.ttft_s * 1000:.0f} ms, "
        f"{completion.tokens_per_s:.1f} tokens/s[/dim]"
    )
