r"""JSON Schema -> GBNF for llama.cpp: the converter llama-cpp-python ships, with JSON's strings.

Every grammar-constrained JSON answer (``response_format``, the products' schemas, tool-call
arguments) is built here.  Why not ``LlamaGrammar.from_json_schema`` as it comes: its ``char``
rule lets a raw newline, tab or other control character into a string, which JSON forbids, so a
"constrained" answer could still fail ``json.loads`` (and every OpenAI client).  Measured
2026-12-07: Qwen2.5-Coder-0.5B asked for a four-line poem under ``{"poem": string}`` wrote the
lines with raw newlines, an answer no client could parse; with this rule it writes none.

``pattern`` gets the same care (``grammar_pattern``): this converter copies ``\d`` into the
grammar as is, which llama.cpp cannot parse (``"^\d+$"`` failed every model with "the grammar
could not be parsed"), asserts on a pattern without ``^...$`` (JSON Schema patterns match
anywhere), and its ``.`` and ``[^...]`` allowed a raw quote, backslash or control character.
"""

from __future__ import annotations

import copy
from typing import Any

from llama_cpp.llama_grammar import LlamaGrammar, SchemaConverter


def converter() -> SchemaConverter:
    """The converter as ``json_schema_to_gbnf`` makes it (no remote refs, properties in order)."""
    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


# Characters a JSON string may not hold raw, as GBNF character-class text.
_UNSAFE = r'"\\\x7F\x00-\x1F'
# Regex shorthand classes, as character-class bodies (``\\s``: a space, the only whitespace a
# JSON string holds raw).
_SHORTHAND = {"d": "0-9", "w": "0-9A-Za-z_", "s": " "}
# Escapes that reach a grammar literal intact: the converter unescapes the regex metacharacters,
# llama.cpp knows ``\\`` and ``\"``.  Other escaped punctuation (``\.``, ``\$``) llama.cpp
# rejects in a literal, so it is written as a one-character class instead.
_LITERAL_ESCAPES = frozenset('[]()|{}*+?\\"')


def strict_strings(conv: SchemaConverter) -> None:
    """No raw control characters inside JSON strings (the converter's ``char`` rule allows them).

    Also a pattern's ``.``: no raw quote, backslash or control character.  Call after the last
    ``visit``: the rules exist once a schema with a string (a pattern with a dot) was visited.
    """
    rule = conv._rules.get("char")
    if rule is not None:
        conv._rules["char"] = rule.replace(r'[^"\\]', f"[^{_UNSAFE}]", 1)
    if "dot" in conv._rules:
        conv._rules["dot"] = f"[^{_UNSAFE}]"


def grammar_pattern(pattern: str) -> str:
    r"""A JSON Schema ``pattern`` in the form this converter turns into a valid grammar.

    Shorthand classes become explicit ones (``\d`` -> ``[0-9]``, also inside ``[...]``), escaped
    punctuation a one-character class (``\.`` -> ``[.]``), a negated class excludes what a JSON
    string cannot hold raw, and an unanchored pattern, which JSON Schema matches anywhere in the
    string, gets ``^.*`` / ``.*$``.  Raises ``ValueError`` for a negated shorthand inside a class
    (``[\D]``), which has no character-class equivalent here.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            if e.lower() in _SHORTHAND:
                short = _SHORTHAND[e.lower()]
                out.append(f"[{short}]" if e.islower() else f"[^{short}{_UNSAFE}]")
            elif not e.isalnum() and e not in _LITERAL_ESCAPES:  # "\." -> "[.]"
                out.append("[\\^]" if e == "^" else f"[{e}]")
            else:
                out.append(pattern[i:i + 2])
            i += 2
        elif c == "[":
            j = i + 1
            negated = j < n and pattern[j] == "^"
            j += negated
            members: list[str] = []
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\" and j + 1 < n:
                    e = pattern[j + 1]
                    if e in _SHORTHAND:
                        members.append(_SHORTHAND[e])
                    elif e.lower() in _SHORTHAND:
                        raise ValueError(f"\\{e} inside [...] is not supported in a pattern")
                    else:
                        members.append(pattern[j:j + 2])
                    j += 2
                else:
                    members.append(pattern[j])
                    j += 1
            if j >= n:  # unbalanced: the converter reports it
                out.append(pattern[i:])
                break
            text = "".join(members)
            out.append(f"[^{text}{_UNSAFE}]" if negated else f"[{text}]")
            i = j + 1
        else:
            out.append(c)
            i += 1
    result = "".join(out)
    starts, ends = result.startswith("^"), result.endswith("$")
    if starts and ends:
        return result
    core = result[1 if starts else 0:len(result) - 1 if ends else len(result)]
    if not core:  # "", "^" or "$": any string
        return "^.*$"
    # A group, so an alternation (``a|b``: either one, anywhere) stays one alternation.
    return f"^{'' if starts else '.*'}({core}){'' if ends else '.*'}$"


# Keywords whose values are data, not schemas: a "pattern" key in there is not a pattern.
_DATA_KEYS = frozenset(("const", "enum", "default", "examples"))
# Keywords whose values map names to schemas: a property may be called "pattern" or "const".
_NAMED_SCHEMAS = frozenset(("properties", "$defs", "definitions", "patternProperties"))


def _patterns_for_grammar(node: Any) -> None:
    """Rewrite every ``pattern`` of a (copied) schema with ``grammar_pattern``, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                node[key] = grammar_pattern(value)
            elif key in _NAMED_SCHEMAS and isinstance(value, dict):
                for schema in value.values():
                    _patterns_for_grammar(schema)
            elif key not in _DATA_KEYS:
                _patterns_for_grammar(value)
    elif isinstance(node, list):
        for value in node:
            _patterns_for_grammar(value)


def prepared(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` for the converter: patterns rewritten (``grammar_pattern``).

    A copy because the converter also rewrites ``$ref`` values in the dict it resolves: the
    caller's schema stays as it was (a second grammar from it would fail on rewritten refs, and
    tools are shown to the model after their grammar is built).
    """
    own = copy.deepcopy(schema)
    _patterns_for_grammar(own)
    return own


def schema_gbnf(schema: dict[str, Any]) -> str:
    """GBNF whose every sentence is a JSON text valid against ``schema``."""
    conv = converter()
    conv.visit(conv.resolve_refs(prepared(schema), "schema"), "")
    strict_strings(conv)
    return str(conv.format_grammar())


def schema_grammar(schema: dict[str, Any]) -> LlamaGrammar:
    return LlamaGrammar.from_string(schema_gbnf(schema), verbose=False)


__all__ = ["converter", "grammar_pattern", "prepared", "schema_gbnf", "schema_grammar",
           "strict_strings"]
