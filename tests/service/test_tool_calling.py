"""Tool calling through the live API, driven by the official ``openai`` SDK.

By default on the bundled SmolLM2-135M, registered with the ``tools`` capability given by hand:
its own template knows nothing of tools, so the runner adds Qwen's tool instructions and the
grammar makes every call parse against the function's schema (the shape is guaranteed, not the
judgement of a 135M model).  Qwen2.5-Coder-0.5B, whose template renders tools and which gets the
capability from its GGUF header, answers the same requests under the ``ladder`` marker.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import openai
import pytest
from modelyard_registry import bundled
from modelyard_registry.db import session_scope
from modelyard_registry.local_models import register_gguf
from modelyard_registry.settings import Settings

from .conftest import Stack, StackFactory

pytestmark = pytest.mark.slow

GET_ORDER: dict[str, Any] = {"type": "function", "function": {
    "name": "get_order", "description": "Look up an order's status by its id.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["order_id"],
                   "properties": {"order_id": {"type": "string", "maxLength": 16}}}}}
CANCEL: dict[str, Any] = {"type": "function", "function": {
    "name": "cancel_order", "description": "Cancel an order that has not shipped.",
    "parameters": {"type": "object", "additionalProperties": False,
                   "required": ["order_id", "reason"],
                   "properties": {"order_id": {"type": "string", "maxLength": 16},
                                  "reason": {"type": "string",
                                             "enum": ["duplicate", "too_slow", "other"]}}}}}
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (GET_ORDER, CANCEL)}
ASK = [{"role": "user", "content": "Where is my order A-5512? It has not arrived."}]


def _client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.admin_key,
                         max_retries=0, timeout=300)


def _wait_for_model(stack: Stack, name: str) -> None:
    """The API's catalogue snapshot notices another process's new row within a second or so."""
    with stack.client() as http:
        for _ in range(100):
            if name in [m["id"] for m in http.get("/v1/models").json()["data"]]:
                return
            time.sleep(0.2)
    raise AssertionError(f"{name} never appeared in GET /v1/models")


def _valid_call(call: Any) -> dict[str, Any]:
    assert call.type == "function" and call.id.startswith("call_")
    args: dict[str, Any] = json.loads(call.function.arguments)
    jsonschema.validate(args, SCHEMAS[call.function.name])
    return args


def _stream_call(client: openai.OpenAI, model: str, **kwargs: Any
                 ) -> tuple[str | None, list[Any], str]:
    """(finish_reason, the tool-call deltas, the streamed text) of one streamed answer."""
    deltas, text, finish = [], [], None
    for chunk in client.chat.completions.create(model=model, messages=ASK, stream=True,
                                                tools=[GET_ORDER, CANCEL], **kwargs):
        choice = chunk.choices[0]
        deltas += choice.delta.tool_calls or []
        text.append(choice.delta.content or "")
        finish = choice.finish_reason or finish
    return finish, deltas, "".join(text)


def _check_streamed_call(deltas: list[Any]) -> tuple[str, dict[str, Any]]:
    first, rest = deltas[0], deltas[1:]
    assert first.index == 0 and first.id.startswith("call_") and first.type == "function"
    assert first.function.name in SCHEMAS and rest  # the arguments follow in pieces
    assert all(d.id is None and d.function.name is None for d in rest)
    args = json.loads("".join(d.function.arguments or "" for d in deltas))
    jsonschema.validate(args, SCHEMAS[first.function.name])
    return first.function.name, args


def test_smollm2_with_the_tools_capability_answers_openai_tool_calls(
    stack_factory: StackFactory,
) -> None:
    stack = stack_factory(workers=0, with_model=False)
    settings = Settings(home=stack.home)
    with session_scope(settings.effective_database_url) as session:
        register_gguf(session, settings, name="smol-tools",
                      path=bundled.BUNDLED["smollm2-135m"].parts()[0],
                      capabilities=["chat", "completion", "json_schema", "tools"])
    _wait_for_model(stack, "smol-tools")
    client = _client(stack)

    named = client.chat.completions.create(
        model="smol-tools", messages=ASK, tools=[GET_ORDER, CANCEL], max_tokens=64,
        tool_choice={"type": "function", "function": {"name": "cancel_order"}})
    choice = named.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.function.name == "cancel_order"
    assert _valid_call(call)["reason"] in {"duplicate", "too_slow", "other"}
    assert named.usage is not None and named.usage.completion_tokens > 5

    # routed (model "auto": the only tool-capable model), streamed, a call required
    finish, deltas, text = _stream_call(client, "auto", tool_choice="required", max_tokens=64)
    assert finish == "tool_calls" and text == ""
    _check_streamed_call(deltas)

    # "auto": a text answer or a call, never a malformed one
    answer = client.chat.completions.create(model="smol-tools", messages=ASK, max_tokens=48,
                                            tools=[GET_ORDER, CANCEL])
    message = answer.choices[0].message
    if message.tool_calls:
        assert answer.choices[0].finish_reason == "tool_calls"
        _valid_call(message.tool_calls[0])
    else:
        assert message.content

    # "none": plain text, no calls; and the conversation goes on after a tool result
    history: list[Any] = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call.id, "type": "function",
            "function": {"name": "get_order", "arguments": '{"order_id": "A-5512"}'}}]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"status": "in transit"}'},
    ]
    for messages in (ASK, history):
        plain = client.chat.completions.create(model="smol-tools", messages=messages,
                                               tools=[GET_ORDER], tool_choice="none",
                                               max_tokens=16)
        assert plain.choices[0].message.tool_calls is None
        assert plain.choices[0].message.content and plain.choices[0].finish_reason != "tool_calls"

    with pytest.raises(openai.UnprocessableEntityError, match="not among the tools"):
        client.chat.completions.create(model="smol-tools", messages=ASK, tools=[GET_ORDER],
                                       tool_choice={"type": "function",
                                                    "function": {"name": "drop_table"}})


@pytest.mark.ladder
def test_qwen_calls_the_right_tool_with_the_right_arguments(stack_factory: StackFactory) -> None:
    stack = stack_factory(workers=0, with_model=False)
    settings = Settings(home=stack.home)
    with session_scope(settings.effective_database_url) as session:
        entry, _ = bundled.pull(session, settings, "qwen2.5-coder-0.5b")
        assert "tools" in entry.capabilities  # from the GGUF's chat template
    _wait_for_model(stack, "qwen2.5-coder-0.5b")
    client = _client(stack)

    answer = client.chat.completions.create(model="auto", messages=ASK, max_tokens=64,
                                            tools=[GET_ORDER, CANCEL])
    assert answer.model == "qwen2.5-coder-0.5b"
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_order"
    assert _valid_call(call) == {"order_id": "A-5512"}

    finish, deltas, _ = _stream_call(client, "qwen2.5-coder-0.5b", max_tokens=64)
    assert finish == "tool_calls"
    assert _check_streamed_call(deltas) == ("get_order", {"order_id": "A-5512"})

    # With "auto" the 0.5B rung also calls get_order (with an invented id) for a greeting: the
    # tools suite measures such choices; "none" is the contract that always gives text.
    text = client.chat.completions.create(
        model="qwen2.5-coder-0.5b", max_tokens=32, tools=[GET_ORDER, CANCEL], tool_choice="none",
        messages=[{"role": "user", "content": "Say hello to the support team in one line."}])
    assert text.choices[0].message.tool_calls is None and text.choices[0].message.content
