"""``POST /v1/chat/completions``: OpenAI-compatible, routed.

``model: "auto"`` lets the router pick the cheapest adequate model (hints: headers
``x-modelyard-kind``, ``x-modelyard-min-quality``, ``x-modelyard-max-cost-ratio``,
``x-modelyard-best-effort``); a catalogue name pins that model.  The answer names the model
that produced it (``model`` and the ``x-modelyard-model`` header) and carries the routing facts
under ``modelyard``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header
from modelyard_registry.errors import InvalidInput, ModelyardError, NotFound
from modelyard_registry.routing.options import RoutingOptions
from modelyard_registry.runtimes import GenerationRequest
from modelyard_registry.validators import json_schema_validator, tool_calls_validator
from starlette.requests import Request
from starlette.responses import Response

from ...auth import Principal
from ...errors import error_body
from ..chat_request import ChatRequest, well_formed
from ..contract import errors
from ..deps import PrincipalDep, ServicesDep, caller_key
from ..lean_route import lean_route
from ..orjson_response import OrjsonResponse
from ..relay import RelayResponse, prime
from ..services import Services
from ..tool_request import calls_json, delta_json, tool_choice, tool_names


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class RoutingHeaders:
    """The ``x-modelyard-*`` routing hints of one chat request, as sent (strings or None)."""

    kind: str | None = None
    min_quality: str | None = None
    max_cost_ratio: str | None = None
    best_effort: str | None = None

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> RoutingHeaders:
        return cls(kind=headers.get("x-modelyard-kind"),
                   min_quality=headers.get("x-modelyard-min-quality"),
                   max_cost_ratio=headers.get("x-modelyard-max-cost-ratio"),
                   best_effort=headers.get("x-modelyard-best-effort"))


def _fraction(value: str | None, header: str, *, zero: bool) -> float | None:
    """A header holding a number in [0, 1] (``(0, 1]`` unless ``zero``); 422 naming it."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not (0.0 <= number <= 1.0 if zero else 0.0 < number <= 1.0):
        bounds = "0..1" if zero else "(0, 1]"
        raise InvalidInput(f"{header} must be a number in {bounds}", field=header)
    return number


def _options(pinned: str | None, hints: RoutingHeaders) -> RoutingOptions:
    """The routing headers as the same typed options a job carries."""
    return RoutingOptions(
        min_quality=_fraction(hints.min_quality, "x-modelyard-min-quality", zero=True),
        max_cost_ratio=_fraction(hints.max_cost_ratio, "x-modelyard-max-cost-ratio",
                                 zero=False),
        model=pinned, best_effort=_flag(hints.best_effort, True))


async def complete(services: Services, body: ChatRequest, principal: Principal,
                   hints: RoutingHeaders) -> Response:
    """The answer to a chat request, once its caller is known and its body read.

    Shared by the lean path and FastAPI's (``chat_completions``), so both do the same work.
    """
    body.check_caps(services.settings)
    pinned = None if body.model == "auto" else body.model
    if pinned is not None and not await services.knows_model(pinned):
        raise NotFound(f"no model {pinned!r} in the catalogue; use \"auto\" or one of "
                       "GET /v1/models", field="model")
    schema = body.output_schema()
    max_tokens = body.max_completion_tokens or body.max_tokens or 256
    options = _options(pinned, hints)
    # A call with tools is routed on the tools suite's scores unless the caller names a kind.
    default_kind = "tools" if body.needs_tools() else "chat"
    spec = options.spec(hints.kind or default_kind, max_output_tokens=max_tokens,
                        needs_json_schema=schema is not None)
    if body.needs_tools():
        spec = spec.model_copy(update={"needs_tools": True})
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    tools = body.tools if body.needs_tools() else None
    choice, forced = tool_choice(body.tool_choice, tool_names(tools)) if tools else ("auto", None)
    request = GenerationRequest(
        messages=[m.model_dump(exclude_none=True) for m in body.messages], max_tokens=max_tokens,
        temperature=body.temperature, stop=stop, json_schema=schema,
        tools=tools, tool_choice=choice, tool_name=forced,
    )
    # No request session: the key came from the cache (or a session of its own, see deps), and
    # the budget is the cascade's (it reserves the call's maximum, ``budget.TeamBudgets``).
    request_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    cascade = services.cascade
    if body.stream:
        def open_stream() -> tuple[str, list[str], Generator[str, None, None]]:
            """The call opened and its role chunk and first token pulled, in one hop."""
            model, events = cascade.stream(spec, request, request_id=request_id,
                                           team_id=principal.team_id, node="chat")
            return model, *prime(_sse(request_id, model, events), 2)

        model, ready, chunks = await services.offload(open_stream)
        return RelayResponse(chunks, services.streams, ready, media_type="text/event-stream",
                             headers={"x-modelyard-model": model})
    validator = (
        tool_calls_validator(tools, required=choice == "required", text_schema=schema) if tools
        else json_schema_validator(schema) if schema is not None else None
    )
    result = await services.offload(
        lambda: cascade.run(spec, request, validator, request_id=request_id,
                            team_id=principal.team_id, node="chat")
    )
    done = result.completion
    chosen = result.decision.ranked()[0].reason if result.decision.ranked() else ""
    message: dict[str, Any] = {"role": "assistant", "content": done.text}
    if done.tool_calls:
        message = {"role": "assistant", "content": done.text or None,
                   "tool_calls": calls_json(done.tool_calls)}
    body_out = {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": done.finish_reason or "stop",
        }],
        "usage": {
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
        },
        "modelyard": {
            "cost_usd": result.cost_usd,
            "escalated": result.escalated,
            "reason": chosen,
            "attempts": [
                {"model": a.model, "outcome": a.outcome, "reason": a.reason,
                 "cost_usd": a.cost_usd, "latency_s": round(a.latency_s, 4)}
                for a in result.attempts
            ],
        },
    }
    return OrjsonResponse(body_out, headers={"x-modelyard-model": result.model})


async def lean(request: Request) -> Response | None:
    """The request FastAPI's path would answer with ``complete``, answered without FastAPI.

    Only a well-formed body (``well_formed``) from a key already in the key cache; None for
    anything else, which then takes FastAPI's path (``lean_route``).  The body is read first:
    it is pure, so a body FastAPI would refuse is refused there, after its key and rate-limit
    checks, as before; the rate limit is counted once either way.
    """
    body = well_formed(await request.body(), request.headers.get("content-type"))
    if body is None:
        return None
    services: Services = request.app.state.services
    principal = services.keys.cached(caller_key(request))
    if principal is None:
        return None
    await services.limiter.check(principal.rate_subject)
    request.state.principal = principal
    return await complete(services, body, principal, RoutingHeaders.of(request.headers))


router = APIRouter(route_class=lean_route(lean), prefix="/v1", tags=["chat"])


@router.post("/chat/completions", response_model=None, responses={
    **errors(404, 502, 503, 504, 507),
    200: {"description": "The completion; with ``stream: true``, Server-Sent Events.",
          "content": {"application/json": {}, "text/event-stream": {}}}})
async def chat_completions(
    body: ChatRequest,
    services: ServicesDep,
    principal: PrincipalDep,
    kind: Annotated[str | None, Header(alias="x-modelyard-kind")] = None,
    min_quality: Annotated[str | None, Header(alias="x-modelyard-min-quality")] = None,
    max_cost_ratio: Annotated[str | None, Header(alias="x-modelyard-max-cost-ratio")] = None,
    best_effort: Annotated[str | None, Header(alias="x-modelyard-best-effort")] = None,
) -> Response:
    # FastAPI's full path: ``lean`` answers most requests before it (see ``lean_route``).
    hints = RoutingHeaders(kind=kind, min_quality=min_quality, max_cost_ratio=max_cost_ratio,
                           best_effort=best_effort)
    return await complete(services, body, principal, hints)


def _sse(request_id: str, model: str, events: Iterator[Any]) -> Generator[str, None, None]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {"id": request_id, "object": "chat.completion.chunk", "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {orjson.dumps(data).decode()}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    last = ""  # the finish chunk goes out with [DONE], after the call is recorded: one pull less
    try:
        for event in events:
            if event.text:
                yield chunk({"content": event.text})
            if event.tool_call is not None:
                yield chunk({"tool_calls": [delta_json(event.tool_call)]})
            if event.completion is not None:
                done = event.completion
                usage = {"prompt_tokens": done.prompt_tokens,
                         "completion_tokens": done.completion_tokens,
                         "total_tokens": done.prompt_tokens + done.completion_tokens}
                last = chunk({}, done.finish_reason or "stop", usage=usage)
    except ModelyardError as exc:  # the status line is sent: the error travels in the stream
        error = orjson.dumps(error_body(exc.error_type, exc.message, exc.field)).decode()
        yield f"{last}data: {error}\n\n"
        return
    yield f"{last}data: [DONE]\n\n"
