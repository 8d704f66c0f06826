"""The body of ``POST /v1/chat/completions``: the OpenAI fields Modelyard honours, and their caps.

``well_formed`` reads a body the way FastAPI's route would, for the route's lean path
(``routes/chat.py``): JSON text under an ``application/json`` content type, validated as
``ChatRequest`` in Python mode, as FastAPI validates a body parameter.  Anything it cannot read
(other content types, JSON ``orjson`` refuses, invalid fields) is left to FastAPI, which answers
it with its usual error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from modelyard_registry.errors import InvalidInput
from modelyard_registry.schema_limits import SchemaBudget, check_schema
from modelyard_registry.settings import Settings
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .lean_route import json_body
from .schemas import TOOL_CHOICE_SCHEMA, TOOL_SCHEMA
from .tool_request import tool_choice, tool_names


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
            budget = SchemaBudget()  # the caps hold over all the tools together
            for i, tool in enumerate(tools):
                function = tool.get("function")
                params = function.get("parameters") if isinstance(function, dict) else None
                if params is None:
                    continue
                field = f"tools.{i}.function.parameters"
                if not isinstance(params, dict):
                    raise InvalidInput("tool parameters must be a JSON Schema object",
                                       field=field)
                check_schema(params, field, budget=budget)

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


def well_formed(raw: bytes, content_type: str | None) -> ChatRequest | None:
    """``raw`` as a ``ChatRequest`` when FastAPI would read it as one, else None (``json_body``)."""
    return json_body(raw, content_type, ChatRequest)


__all__ = ["ChatRequest", "Message", "ResponseFormat", "well_formed"]
