"""The ``tools`` / ``tool_choice`` fields of a chat request, checked, and calls in OpenAI's shape.

Checked before routing so a bad request is a 422 naming the field, never a model call: each
tool is a ``function`` with a name OpenAI would accept (the grammar and the parser rely on it),
and a named ``tool_choice`` must name one of the tools.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard_registry.errors import InvalidInput
from modelyard_registry.runtimes import ToolCall, ToolCallDelta, ToolChoice

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    """The function names, after checking each tool's shape (422 naming ``tools.<i>``)."""
    names = []
    for i, tool in enumerate(tools):
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise InvalidInput("only function tools are supported", field=f"tools.{i}")
        name = function.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidInput("a function name is 1-64 letters, digits, _ or -",
                               field=f"tools.{i}.function.name")
        names.append(name)
    if len(set(names)) != len(names):
        raise InvalidInput("function names must be unique", field="tools")
    return names


def tool_choice(raw: str | dict[str, Any] | None, names: list[str]
                ) -> tuple[ToolChoice, str | None]:
    """``(choice, forced function)`` from OpenAI's ``tool_choice`` ("none" is handled before)."""
    if raw is None or raw == "auto":
        return "auto", None
    if raw == "required":
        return "required", None
    if isinstance(raw, dict):
        function = raw.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if name in names:
            return "required", str(name)
        raise InvalidInput(f"tool_choice names {name!r}, which is not among the tools",
                           field="tool_choice")
    raise InvalidInput('tool_choice is "none", "auto", "required" or '
                       '{"type": "function", "function": {"name": ...}}', field="tool_choice")


def calls_json(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """``message.tool_calls`` of a non-streamed answer."""
    return [{"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def delta_json(delta: ToolCallDelta) -> dict[str, Any]:
    """One entry of a chunk's ``delta.tool_calls``: id, type and name come with the first."""
    out: dict[str, Any] = {"index": delta.index}
    function: dict[str, Any] = {"arguments": delta.arguments}
    if delta.id is not None:
        out["id"], out["type"] = delta.id, "function"
    if delta.name is not None:
        function["name"] = delta.name
    out["function"] = function
    return out
