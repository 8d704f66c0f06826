"""JSON Schema -> GBNF for llama.cpp: the converter llama-cpp-python ships, with JSON's strings.

Every grammar-constrained JSON answer (``response_format``, the products' schemas, tool-call
arguments) is built here.  Why not ``LlamaGrammar.from_json_schema`` as it comes: its ``char``
rule lets a raw newline, tab or other control character into a string, which JSON forbids, so a
"constrained" answer could still fail ``json.loads`` (and every OpenAI client).  Measured
2026-12-07: Qwen2.5-Coder-0.5B asked for a four-line poem under ``{"poem": string}`` wrote the
lines with raw newlines, an answer no client could parse; with this rule it writes none.
"""

from __future__ import annotations

import copy
from typing import Any

from llama_cpp.llama_grammar import LlamaGrammar, SchemaConverter


def converter() -> SchemaConverter:
    """The converter as ``json_schema_to_gbnf`` makes it (no remote refs, properties in order)."""
    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def strict_strings(conv: SchemaConverter) -> None:
    """No raw control characters inside JSON strings (the converter's ``char`` rule allows them).

    Call after the last ``visit``: the rule exists once a schema with a string was visited.
    """
    rule = conv._rules.get("char")
    if rule is not None:
        conv._rules["char"] = rule.replace(r'[^"\\]', r'[^"\\\x7F\x00-\x1F]', 1)


def schema_gbnf(schema: dict[str, Any]) -> str:
    """GBNF whose every sentence is a JSON text valid against ``schema``.

    The converter rewrites ``$ref`` values in the dict it resolves, so it gets a copy: the
    caller's schema stays as it was (a second grammar from it would fail on the rewritten refs).
    """
    conv = converter()
    conv.visit(conv.resolve_refs(copy.deepcopy(schema), "schema"), "")
    strict_strings(conv)
    return str(conv.format_grammar())


def schema_grammar(schema: dict[str, Any]) -> LlamaGrammar:
    return LlamaGrammar.from_string(schema_gbnf(schema), verbose=False)


__all__ = ["converter", "schema_gbnf", "schema_grammar", "strict_strings"]
