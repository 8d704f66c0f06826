"""Tool calling for local models: the prompt, the grammar that makes every call parse, the parser.

Runs inside the runner process (``llama_runner``), next to the model.  The call format is the
one Qwen2.5's chat template teaches (Hermes-style, also used by many other templates)::

    <tool_call>
    {"name": "get_order", "arguments": {"order_id": "5512"}}
    </tool_call>

The grammar pins that frame byte for byte and constrains ``arguments`` by the function's JSON
Schema (llama.cpp's converter, the same one ``response_format`` uses), so a call always parses
and validates.  Two other frames Qwen2.5-Coder writes although its template teaches the tags are
calls too: the bare object (the 0.5B rung) and the object in a Markdown JSON fence (the 1.5B
rung writes ```` ```json ```` and pretty-printed JSON for every call; llama.cpp's own Hermes/Qwen
handler accepts the same fences).  With ``tool_choice`` "auto" the grammar also allows a
plain-text answer that starts with none of ``<``, ``{`` or a backtick: the first character
decides which one the model chose, and text streams as it comes.  Only one call per turn (no
parallel calls): a second call is where small models start to loop.

A model whose own template does not mention ``tools`` (an operator gave it the capability by
hand) gets the same instructions as a system message and tool history as plain text, so any chat
model can be made to call tools; the grammar is what guarantees the shape, not the template.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from .base import ToolCallDelta, ToolChoice
from .json_grammar import converter, prepared, strict_strings
from .runner_wire import Pieces

CALL_OPEN = '<tool_call>\n{"name": "'
CALL_CLOSE = "}\n</tool_call>"
BARE_OPEN = '{"name": "'
BARE_CLOSE = "}"
FENCE_OPENS = ("```json\n", "```\n")
FENCE_CLOSE = "}\n```"
ARGS_SEP = '", "arguments": '
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
_EMPTY_PARAMS: dict[str, Any] = {"type": "object", "properties": {}}


def template_supports_tools(template: str | None) -> bool:
    """A chat template that reads a ``tools`` variable renders tool definitions itself."""
    return bool(template) and re.search(r"\btools\b", template or "") is not None


def _functions(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t["function"] for t in tools if isinstance(t.get("function"), dict)]


def tool_grammar(tools: list[dict[str, Any]], choice: ToolChoice, name: str | None,
                 text_schema: dict[str, Any] | None) -> str:
    """GBNF for one call of an allowed function, or (``auto``) a text answer.

    ``text_schema`` (a ``response_format`` schema) constrains the text answer too; a JSON text
    answer and a bare call would share their first characters, so then only tagged calls are
    allowed (``bare_calls``).
    """
    conv = converter()
    alternatives = []
    for i, function in enumerate(_functions(tools)):
        if name is not None and function["name"] != name:
            continue
        params = function.get("parameters") or _EMPTY_PARAMS
        args = conv.visit(conv.resolve_refs(prepared(params), f"tool{i}"), f"tool{i}-args")
        alternatives.append(f"{conv._format_literal(function['name'] + ARGS_SEP)} {args}")
    if not alternatives:
        raise ValueError(f"tool_choice names {name!r}, which is not among the tools")
    auto = choice == "auto" and name is None
    text = "text-answer"
    if auto and text_schema is not None:
        text = conv.visit(conv.resolve_refs(prepared(text_schema), "text"), "text-answer")
    strict_strings(conv)  # after the last visit: every string rule the grammar uses exists
    lit = conv._format_literal
    fences = " | ".join(lit(f) for f in FENCE_OPENS)
    frames = [f"{lit(CALL_OPEN)} call-body {lit(CALL_CLOSE)}",
              f"( {fences} ) {lit(BARE_OPEN)} call-body {lit(FENCE_CLOSE)}"]
    if bare_calls(choice, name, text_schema):
        frames.append(f"{lit(BARE_OPEN)} call-body {lit(BARE_CLOSE)}")
    rules = [conv.format_grammar(), f"call-body ::= {' | '.join(alternatives)}",
             f"tool-call ::= {' | '.join(frames)}"]
    if auto and text_schema is None:
        rules.append('text-answer ::= [^<{`] [^\\x00]*')
    rules.append(f"root ::= tool-call | {text}" if auto else "root ::= tool-call")
    return "\n".join(rules) + "\n"


def bare_calls(choice: ToolChoice, name: str | None, text_schema: dict[str, Any] | None) -> bool:
    """Whether a call may come without its tags (not when a JSON text answer is possible)."""
    return not (choice == "auto" and name is None and text_schema is not None)


def tools_system_prompt(tools: list[dict[str, Any]]) -> str:
    """Qwen2.5's own tool instructions, for templates that have none."""
    listed = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{listed}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def _arguments(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _call_text(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    body = {"name": function.get("name"), "arguments": _arguments(function.get("arguments"))}
    return f"<tool_call>\n{json.dumps(body, ensure_ascii=False)}\n</tool_call>"


def prepare_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                     native: bool) -> list[dict[str, Any]]:
    """Messages as the chat template should see them.

    ``native``: the template renders tools and tool history itself; it wants each call's
    arguments as an object (it applies ``tojson``), not OpenAI's JSON text.  Otherwise the tool
    instructions join the system message, calls become assistant text and results user text
    in the same tags, which any template renders.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        m = {k: v for k, v in message.items() if v is not None}
        m["content"] = message.get("content") or ""
        calls = message.get("tool_calls") or []
        if native:
            if calls:
                m["tool_calls"] = [
                    {**c, "function": {**(c.get("function") or {}),
                                       "arguments": _arguments((c.get("function") or {})
                                                               .get("arguments"))}}
                    for c in calls
                ]
        else:
            m.pop("tool_calls", None)
            m.pop("tool_call_id", None)
            if calls:
                m["content"] = "\n".join([m["content"], *map(_call_text, calls)]).strip()
            if m.get("role") == "tool":
                m = {"role": "user",
                     "content": f"<tool_response>\n{m['content']}\n</tool_response>"}
        out.append(m)
    if tools and not native:
        prompt = tools_system_prompt(tools)
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{prompt}"}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


class ToolStreamParser:
    """Turns the sampled text into text pieces or one streamed tool call.

    The grammar fixes the frame, so the first character says which one it is (``<`` tagged,
    ``{`` bare when ``bare`` calls are allowed, a backtick fenced, anything else text), and the
    parser only has to find the name after the call object's opening (every frame holds
    ``BARE_OPEN``) and hold back the length of its closing until the end.
    """

    def __init__(self, auto: bool, bare: bool = True,
                 new_id: Callable[[], str] = new_call_id) -> None:
        self.mode = "undecided"
        self.auto = auto
        self.bare = bare
        self.close = CALL_CLOSE
        self.new_id = new_id
        self.buf = ""
        self.args_start: int | None = None
        self.sent = 0
        self.complete = False

    def feed(self, text: str) -> list[Pieces | ToolCallDelta]:
        if self.mode == "text":
            return [Pieces(text)] if text else []
        self.buf += text
        if self.mode == "undecided":
            if not self.buf:
                return []
            if self.bare and self.buf.startswith("{"):
                self.close = BARE_CLOSE
            elif self.buf.startswith("`"):
                self.close = FENCE_CLOSE
            elif self.auto and not self.buf.startswith("<"):  # the grammar's text answer
                text, self.buf, self.mode = self.buf, "", "text"
                return [Pieces(text)]
            self.mode = "call"
        return self._call(final=False)

    def finish(self) -> list[Pieces | ToolCallDelta]:
        if self.mode != "call":
            return []
        return self._call(final=True)

    def _call(self, final: bool) -> list[Pieces | ToolCallDelta]:
        out: list[Pieces | ToolCallDelta] = []
        if self.args_start is None:
            opened = self.buf.find(BARE_OPEN)
            at = self.buf.find(ARGS_SEP, opened + len(BARE_OPEN)) if opened >= 0 else -1
            if at < 0:
                return out
            name = self.buf[opened + len(BARE_OPEN):at]
            out.append(ToolCallDelta(index=0, id=self.new_id(), name=name))
            self.args_start = at + len(ARGS_SEP)
        end = len(self.buf) - len(self.close)
        if final:
            self.complete = self.buf.endswith(self.close)
            end = end if self.complete else len(self.buf)
        start = self.args_start + self.sent
        if end > start:
            out.append(ToolCallDelta(index=0, arguments=self.buf[start:end]))
            self.sent = end - self.args_start
        return out
