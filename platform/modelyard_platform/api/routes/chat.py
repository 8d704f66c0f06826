"""``POST /v1/chat/completions``: OpenAI-compatible, routed.

``model: "auto"`` lets the router pick the cheapest adequate model (hints: headers
``x-modelyard-kind``, ``x-modelyard-min-quality``, ``x-modelyard-best-effort``); a catalogue name
pins that model.  The answer names the model that produced it (``model`` and the
``x-modelyard-model`` header) and carries the routing facts under ``modelyard``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Generator, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, StreamingResponse
from modelyard_registry.errors import InvalidInput, ModelyardError, NotFound
from modelyard_registry.routing.options import RoutingOptions
from modelyard_registry.runtimes import GenerationRequest
from modelyard_registry.schema_limits import check_schema
from modelyard_registry.settings import Settings
from modelyard_registry.validators import json_schema_validator, tool_calls_validator
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ...errors import error_body
from ..contract import errors
from ..deps import PrincipalDep, ServicesDep
from ..relay import relay
from ..schemas import TOOL_CHOICE_SCHEMA, TOOL_SCHEMA
from ..session_route import SessionRoute
from ..tool_request import calls_json, delta_json, tool_choice, tool_names

router = APIRouter(route_class=SessionRoute, prefix="/v1", tags=["chat"])


class Message(BaseModel):
    """A chat turn; an assistant's ``tool_calls`` and a ``tool`` result carry OpenAI's fields."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatRequest(BaseModel):
    """The OpenAI fields Modelyard honours; others an SDK sends are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0, le=2)
    stream: bool = False
    stop: str | list[str] | None = None
    response_format: ResponseFormat | None = None
    tools: list[Annotated[dict[str, Any], WithJsonSchema(TOOL_SCHEMA)]] | None = None
    tool_choice: Annotated[str | dict[str, Any] | None, WithJsonSchema(TOOL_CHOICE_SCHEMA)] = None
    n: int = Field(default=1, ge=1, le=1, description="One choice per request.")

    def check_caps(self, settings: Settings) -> None:
        """The operator's caps on list sizes (``Settings.max_*``): O(fields), before routing.

        Long stop lists slow every generated token while the model's lock is held, and huge
        message or tool lists cost tokenising and rendering time: each is a 422 naming the
        field, before any model is touched.
        """
        messages = self.messages
        if len(messages) > settings.max_messages:
            raise InvalidInput(f"{len(messages)} messages; the limit is {settings.max_messages}",
                               field="messages")
        chars = sum(len(m.content or "") for m in messages)
        if chars > settings.max_message_chars:
            raise InvalidInput(f"messages hold {chars:,} characters; the limit is "
                               f"{settings.max_message_chars:,}", field="messages")
        stop = self.stop
        if isinstance(stop, list):
            if len(stop) > settings.max_stop:
                raise InvalidInput(f"{len(stop)} stop strings; the limit is {settings.max_stop}",
                                   field="stop")
            for i, text in enumerate(stop):
                if len(text) > settings.max_stop_chars:
                    raise InvalidInput(f"stop string longer than {settings.max_stop_chars} "
                                       "characters", field=f"stop.{i}")
        elif stop is not None and len(stop) > settings.max_stop_chars:
            raise InvalidInput(f"stop string longer than {settings.max_stop_chars} characters",
                               field="stop")
        tools = self.tools
        if tools:
            if len(tools) > settings.max_tools:
                raise InvalidInput(f"{len(tools)} tools; the limit is {settings.max_tools}",
                                   field="tools")
            tool_choice(self.tool_choice if self.tool_choice != "none" else None,
                        tool_names(tools))
            for i, tool in enumerate(tools):
                function = tool.get("function")
                params = function.get("parameters") if isinstance(function, dict) else None
                if params is None:
                    continue
                field = f"tools.{i}.function.parameters"
                if not isinstance(params, dict):
                    raise InvalidInput("tool parameters must be a JSON Schema object",
                                       field=field)
                check_schema(params, field)

    def needs_tools(self) -> bool:
        """Whether the call must go to a model with the ``tools`` capability.

        Tools are never dropped silently: a request with tools routes only to tool-capable
        models (422 when none is adequate); ``tool_choice: "none"`` opts out.
        """
        return bool(self.tools) and self.tool_choice != "none"

    def output_schema(self) -> dict[str, Any] | None:
        rf = self.response_format
        if rf is None or rf.type == "text":
            return None
        if rf.type == "json_object":
            return {"type": "object"}
        schema = (rf.json_schema or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidInput("response_format.json_schema.schema must be a JSON Schema object",
                               field="response_format.json_schema.schema")
        check_schema(schema, "response_format.json_schema.schema")
        return schema


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _options(pinned: str | None, min_quality: str | None, best_effort: str | None
             ) -> RoutingOptions:
    """The routing headers as the same typed options a job carries."""
    quality = None
    if min_quality is not None:
        try:
            quality = float(min_quality)
        except ValueError:
            quality = -1.0
        if not 0.0 <= quality <= 1.0:
            raise InvalidInput("x-modelyard-min-quality must be a number in 0..1",
                               field="x-modelyard-min-quality")
    return RoutingOptions(min_quality=quality, model=pinned,
                          best_effort=_flag(best_effort, True))


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
    best_effort: Annotated[str | None, Header(alias="x-modelyard-best-effort")] = None,
) -> JSONResponse | StreamingResponse:
    body.check_caps(services.settings)
    pinned = None if body.model == "auto" else body.model
    if pinned is not None and not await services.knows_model(pinned):
        raise NotFound(f"no model {pinned!r} in the catalogue; use \"auto\" or one of "
                       "GET /v1/models", field="model")
    schema = body.output_schema()
    max_tokens = body.max_completion_tokens or body.max_tokens or 256
    options = _options(pinned, min_quality, best_effort)
    # A call with tools is routed on the tools suite's scores unless the caller names a kind.
    default_kind = "tools" if body.needs_tools() else "chat"
    spec = options.spec(kind or default_kind, max_output_tokens=max_tokens,
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
        model, events = await services.offload(
            lambda: cascade.stream(spec, request, request_id=request_id,
                                   team_id=principal.team_id, node="chat")
        )
        return StreamingResponse(relay(_sse(request_id, model, events), services.streams),
                                 media_type="text/event-stream",
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
    return JSONResponse(body_out, headers={"x-modelyard-model": result.model})


def _sse(request_id: str, model: str, events: Iterator[Any]) -> Generator[str, None, None]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {"id": request_id, "object": "chat.completion.chunk", "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(data)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
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
                yield chunk({}, done.finish_reason or "stop", usage=usage)
    except ModelyardError as exc:  # the status line is sent: the error travels in the stream
        yield f"data: {json.dumps(error_body(exc.error_type, exc.message, exc.field))}\n\n"
        return
    yield "data: [DONE]\n\n"
