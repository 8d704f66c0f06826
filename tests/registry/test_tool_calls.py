"""Tool calling's pieces without a model: the frame parser, the messages a template sees, the
grammar's shape, the validator and the ``tools`` eval suite and metric."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from modelyard_registry.evals import load_suite
from modelyard_registry.evals.metrics import score_tools, tool_call_output
from modelyard_registry.gguf_info import read_gguf
from modelyard_registry.local_models import default_capabilities
from modelyard_registry.runtimes import Completion, ToolCall, ToolCallDelta, join_tool_calls
from modelyard_registry.runtimes.runner_wire import Pieces
from modelyard_registry.runtimes.tool_calls import (
    ToolStreamParser,
    prepare_messages,
    template_supports_tools,
    tool_grammar,
)
from modelyard_registry.validators import tool_calls_validator

GET_ORDER = {"type": "function", "function": {
    "name": "get_order", "description": "Look up an order by id.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                   "required": ["order_id"], "additionalProperties": False}}}
CANCEL = {"type": "function", "function": {
    "name": "cancel_order", "parameters": {
        "type": "object", "required": ["order_id", "reason"],
        "properties": {"order_id": {"type": "string"},
                       "reason": {"type": "string", "enum": ["duplicate", "too_slow"]}}}}}
CALL = '<tool_call>\n{"name": "get_order", "arguments": {"order_id": "A-5512"}}\n</tool_call>'


def _run(parser: ToolStreamParser, pieces: list[str]) -> list[Pieces | ToolCallDelta]:
    out: list[Pieces | ToolCallDelta] = []
    for piece in pieces:
        out += parser.feed(piece)
    return out + parser.finish()


@pytest.mark.parametrize("size", [1, 3, 7, len(CALL)])
def test_a_call_streams_its_name_first_then_arguments_however_the_text_is_cut(size: int) -> None:
    parser = ToolStreamParser(auto=True, new_id=lambda: "call_1")
    out = _run(parser, [CALL[i:i + size] for i in range(0, len(CALL), size)])
    assert all(isinstance(m, ToolCallDelta) for m in out)
    deltas = [m for m in out if isinstance(m, ToolCallDelta)]
    assert (deltas[0].id, deltas[0].name, deltas[0].arguments) == ("call_1", "get_order", "")
    assert all(d.id is None and d.name is None for d in deltas[1:])
    assert join_tool_calls(deltas) == [ToolCall("call_1", "get_order", '{"order_id": "A-5512"}')]
    assert parser.complete


def test_a_bare_call_without_tags_is_a_call_too() -> None:
    bare = CALL.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>")
    parser = ToolStreamParser(auto=True, new_id=lambda: "c")
    out = _run(parser, [bare[i:i + 5] for i in range(0, len(bare), 5)])
    calls = join_tool_calls([m for m in out if isinstance(m, ToolCallDelta)])
    assert calls == [ToolCall("c", "get_order", '{"order_id": "A-5512"}')] and parser.complete
    json_text = ToolStreamParser(auto=True, bare=False)  # response_format: JSON text answers
    assert json_text.feed('{"a": 1}') == [Pieces('{"a": 1}')]


@pytest.mark.parametrize("fence", ["```json\n", "```\n"])
@pytest.mark.parametrize("size", [1, 4, 200])
def test_a_call_in_a_json_fence_is_a_call_not_text(fence: str, size: int) -> None:
    """Qwen2.5-Coder-1.5B writes every call in a Markdown JSON fence; read as text, its tools
    score was 0.10 on calls that were right."""
    bare = CALL.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>")
    fenced = f"{fence}{bare}\n```"
    parser = ToolStreamParser(auto=True, new_id=lambda: "c")
    out = _run(parser, [fenced[i:i + size] for i in range(0, len(fenced), size)])
    assert all(isinstance(m, ToolCallDelta) for m in out)
    calls = join_tool_calls([m for m in out if isinstance(m, ToolCallDelta)])
    assert calls == [ToolCall("c", "get_order", '{"order_id": "A-5512"}')] and parser.complete
    json_text = ToolStreamParser(auto=True, bare=False)  # fences stay calls beside JSON text
    assert all(isinstance(m, ToolCallDelta) for m in _run(json_text, [fenced]))


def test_auto_text_streams_as_text() -> None:
    parser = ToolStreamParser(auto=True)
    out = _run(parser, ["Hel", "lo <b>", "!"])
    assert out == [Pieces("Hel"), Pieces("lo <b>"), Pieces("!")]
    assert not parser.complete


def test_a_call_cut_by_max_tokens_is_not_complete() -> None:
    parser = ToolStreamParser(auto=False, new_id=lambda: "c")
    out = _run(parser, [CALL[:60]])
    assert not parser.complete
    assert join_tool_calls([m for m in out if isinstance(m, ToolCallDelta)])[0].name == "get_order"


def test_grammar_frames_one_call_of_the_allowed_functions() -> None:
    auto = tool_grammar([GET_ORDER, CANCEL], "auto", None, None)
    assert "root ::= tool-call | text-answer" in auto
    assert "text-answer ::= [^<{`]" in auto  # text never starts like a call
    fence = '( "```json\\n" | "```\\n" ) "{\\"name\\": \\"" call-body "}\\n```"'
    assert fence in auto
    assert auto.count('"get_order') == 1 and '"{\\"name\\": \\""' in auto  # bare frame
    schema_text = tool_grammar([GET_ORDER], "auto", None, {"type": "object"})
    assert '"{\\"name\\": \\"" call-body "}"' not in schema_text  # no bare calls beside JSON
    assert fence in schema_text  # a fence never starts a JSON text answer
    assert '"get_order\\", \\"arguments\\": "' in auto and "cancel_order" in auto
    required = tool_grammar([GET_ORDER, CANCEL], "required", None, None)
    assert "root ::= tool-call\n" in required and "text-answer" not in required
    assert fence in required
    named = tool_grammar([GET_ORDER, CANCEL], "required", "cancel_order", None)
    assert "cancel_order" in named and "get_order" not in named
    assert 'duplicate' in named  # the enum of the arguments' schema is in the grammar
    with pytest.raises(ValueError, match="not among the tools"):
        tool_grammar([GET_ORDER], "required", "nope", None)


def test_the_grammar_leaves_the_tools_as_the_model_will_see_them() -> None:
    # Schemas made by pydantic (the openai SDK's pydantic_function_tool) use $defs and $ref;
    # the tools are rendered into the prompt after the grammar is built from them.
    ship = {"type": "function", "function": {"name": "ship", "parameters": {
        "type": "object", "$defs": {"address": {"type": "object",
                                                "properties": {"city": {"type": "string"}}}},
        "properties": {"to": {"$ref": "#/$defs/address"}}, "required": ["to"]}}}
    answer = {"type": "object", "$defs": {"n": {"type": "integer"}},
              "properties": {"count": {"$ref": "#/$defs/n"}}}
    before = json.dumps([ship, answer])
    grammar = tool_grammar([ship], "auto", None, answer)
    assert json.dumps([ship, answer]) == before
    assert grammar == tool_grammar([ship], "auto", None, answer)  # and again, the same grammar


def test_messages_for_a_template_with_tools_carry_arguments_as_objects() -> None:
    history = [
        {"role": "user", "content": "Where is A-5512?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "get_order", "arguments": '{"order_id": "A-5512"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
    ]
    native = prepare_messages(history, [GET_ORDER], native=True)
    assert native[1]["tool_calls"][0]["function"]["arguments"] == {"order_id": "A-5512"}
    assert native[1]["content"] == "" and native[2]["role"] == "tool"
    plain = prepare_messages(history, [GET_ORDER], native=False)
    assert plain[0]["role"] == "system" and "<tools>" in plain[0]["content"]
    assert '"get_order"' in plain[0]["content"]
    assert plain[2]["content"] == CALL
    assert plain[3] == {"role": "user",
                        "content": '<tool_response>\n{"status": "shipped"}\n</tool_response>'}


def test_tools_capability_comes_from_the_template(smollm2_path: Path) -> None:
    assert template_supports_tools("{%- if tools %}{{ tools | tojson }}{% endif %}")
    assert not template_supports_tools("{{ messages }}") and not template_supports_tools(None)
    info = read_gguf(smollm2_path)  # SmolLM2's template knows nothing of tools
    assert not info.template_tools and "tools" not in default_capabilities(info)


def _done(calls: list[ToolCall] | None, text: str = "") -> Completion:
    return Completion(text=text, finish_reason="tool_calls" if calls else "stop",
                      prompt_tokens=1, completion_tokens=1, latency_s=0.1, ttft_s=0.01,
                      model="m", tool_calls=calls)


def test_validator_checks_function_and_arguments() -> None:
    check = tool_calls_validator([GET_ORDER, CANCEL], required=False)
    assert check(_done([ToolCall("c", "get_order", '{"order_id": "1"}')]))[0]
    assert check(_done(None, "No tool needed."))[0]
    assert not check(_done([ToolCall("c", "get_order", '{"order": 1}')]))[0]
    assert not check(_done([ToolCall("c", "get_order", "{")]))[0]
    assert not check(_done([ToolCall("c", "drop_table", "{}")]))[0]
    assert not tool_calls_validator([GET_ORDER], required=True)(_done(None, "hi"))[0]


def test_tools_suite_is_shipped_and_its_gold_scores_one() -> None:
    items = load_suite("tools").items
    assert len(items) >= 150
    assert 10 <= sum(i["gold"] is None for i in items) <= 30  # some want a text answer
    for item in items:
        gold = item["gold"]
        if gold is None:
            assert score_tools("I can't help with that.", item) == 1.0
            continue
        function = next(t["function"] for t in item["tools"]
                        if t["function"]["name"] == gold["name"])
        jsonschema.validate(gold["arguments"], function["parameters"])
        for value in gold["arguments"].values():  # copied from the request text
            assert (f"{value:g}" if isinstance(value, float) else str(value)) in item["text"] \
                or value in {"changed_mind", "duplicate", "too_slow"}, item["id"]
        output = tool_call_output(gold["name"], json.dumps(gold["arguments"]))
        assert score_tools(output, item) == 1.0, item["id"]
        assert score_tools("Sure, done.", item) == 0.0


def test_tools_metric_gives_credit_per_argument() -> None:
    item = {"gold": {"name": "cancel_order",
                     "arguments": {"order_id": "A-1", "reason": "duplicate"}}}
    half = tool_call_output("cancel_order", '{"order_id": "A-1", "reason": "too_slow"}')
    assert score_tools(half, item) == 0.5
    assert score_tools(tool_call_output("get_order", '{"order_id": "A-1"}'), item) == 0.0
    no_call = {"gold": None}
    assert score_tools(tool_call_output("get_order", "{}"), no_call) == 0.0
