"""Caps on caller-supplied JSON Schemas, checked before any model sees them.

A JSON Schema becomes a llama.cpp grammar, and llama.cpp expands bounded repetitions into nested
rules: ``"maxLength": 1200`` made the grammar code overflow its stack and kill the process
(SIGSEGV), ``"maxItems": 2000`` the same, 2,000 optional properties broke the converter.  Runners
contain such crashes, but a request that cannot work should be refused with a 422 naming the
keyword, not cost a runner restart.

Caps, measured by ``bench/schema_caps.py`` on SmolLM2 with llama-cpp-python 0.3.36 (build the
grammar, sample a few tokens, each schema in its own process); the caps sit at half or less of
the last value that worked:

========================  =====  ===============================================
keyword                   cap    measured
========================  =====  ===============================================
maxLength                 500    1000 worked; 1200, 1500, 2000, 5000: SIGSEGV
minLength                 500    5000 worked (capped like maxLength all the same)
maxItems                  256    1000 worked; 2000, 3000, 5000: SIGSEGV
minItems                  256    1000 worked
pattern ``{m,n}`` bounds  500    a{1,1000} worked; a{1,3000}: SIGSEGV
pattern length            256    chars, so nested repeats stay small too
nesting depth             16     100 worked (the grammar grows fast)
enum values               500    5000 worked
properties per object     100    500 took 0.5 s to convert; 1000: converter error
optional properties, all  200    the converter's time grows with each object's optional
                                 properties squared: 20 objects x 90 optional took 106 ms
                                 (2 x 100: 13 ms), and the API builds the grammar once
$ref                             local (``#/...``) only: the converter fetches URLs;
                                 and it must point at a part of the schema
whole schema              64 KiB of JSON, at most 2000 subschemas
========================  =====  ===============================================
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput

__all__ = ["DEFAULT_LIMITS", "SchemaBudget", "SchemaLimits", "check_schema"]


@dataclass(frozen=True)
class SchemaLimits:
    max_length: int = 500
    max_items: int = 256
    max_depth: int = 16
    max_enum: int = 500
    max_properties: int = 100
    max_optional_properties: int = 200
    max_pattern_chars: int = 256
    max_schema_bytes: int = 64 * 1024
    max_subschemas: int = 2000


DEFAULT_LIMITS = SchemaLimits()

_LENGTH_KEYS = ("maxLength", "minLength")
_ITEM_KEYS = ("maxItems", "minItems")
_SCHEMA_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAP_KEYS = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_KEYS = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_AWKWARD_NAME = re.compile(r'["\\\x00-\x1f\x7f]')
_QUANTIFIER = re.compile(r"\{(\d+)(?:,(\d*))?\}")


@dataclass
class SchemaBudget:
    """Counts shared by the schemas of one request (its tools), so their caps hold in total.

    Each schema's grammar is built at the check (``_converts``), at a cost that grows with its
    subschemas and optional properties: sixty-four tools each at the caps would otherwise cost
    the API sixty-four times the ~15 ms one costs.
    """

    subschemas: int = 0
    optional: int = 0


def check_schema(schema: Any, field: str, limits: SchemaLimits = DEFAULT_LIMITS,
                 budget: SchemaBudget | None = None) -> None:
    """Raise ``InvalidInput`` naming the offending keyword's path (``field`` + JSON path).

    ``budget``: share the subschema and optional-property counts with other schemas of the
    same request (``SchemaBudget``); each call counts alone without it.
    """
    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError):
        raise InvalidInput("the JSON Schema is not JSON", field=field) from None
    if size > limits.max_schema_bytes:
        raise InvalidInput(f"the JSON Schema is {size} bytes; at most "
                           f"{limits.max_schema_bytes} are accepted", field=field)
    walker = _Walker(limits, budget if budget is not None else SchemaBudget())
    walker.walk(schema, field, 1)
    for ref, path in walker.refs:
        if not _resolves(schema, ref):
            raise InvalidInput(f"$ref {ref!r} points to nothing in this schema", field=path)
    _converts(schema, field)


def _converts(schema: Any, field: str) -> None:
    """Build the grammar here, so what the converter cannot handle is a 422, not a model failure.

    The converter asserts or raises on keywords it lacks (``not``, ``items: false``, a negated
    shorthand in a class), inside the model's runner, where it failed every model the cascade
    tried.  Its module loads llama.cpp's library (~30 MB, once, on the first schema a process
    sees).
    """
    from .runtimes.json_grammar import schema_gbnf

    if isinstance(schema, bool):
        return
    try:
        schema_gbnf(schema)
    except Exception as exc:  # whatever the converter makes of a tenant's schema: a 422
        detail = str(exc) if isinstance(exc, (AssertionError, ValueError)) else repr(exc)
        raise InvalidInput("this JSON Schema cannot be used for constrained decoding: "
                           f"{detail[:300]}", field=field) from None


def _resolves(schema: Any, ref: str) -> bool:
    """Whether llama.cpp's converter can follow ``ref``: ``#/`` then object keys, one by one.

    It asserts (in the model's runner) on a reference it cannot follow, so a dangling one was a
    model failure instead of a 422.
    """
    target = schema
    for key in ref[2:].split("/"):
        if not isinstance(target, dict) or key not in target:
            return False
        target = target[key]
    return True


class _Walker:
    def __init__(self, limits: SchemaLimits, budget: SchemaBudget) -> None:
        self.limits = limits
        self.budget = budget
        self.refs: list[tuple[str, str]] = []  # (a local $ref, where it is)

    def walk(self, node: Any, path: str, depth: int) -> None:
        if isinstance(node, bool):
            return
        if not isinstance(node, dict):
            raise InvalidInput("a JSON Schema must be an object or a boolean", field=path)
        lim = self.limits
        self.budget.subschemas += 1
        if self.budget.subschemas > lim.max_subschemas:
            raise InvalidInput(f"the JSON Schema has more than {lim.max_subschemas} subschemas",
                               field=path)
        if depth > lim.max_depth:
            raise InvalidInput(f"the JSON Schema nests deeper than {lim.max_depth} levels",
                               field=path)
        for key in _LENGTH_KEYS:
            self._bound(node, key, path, lim.max_length)
        for key in _ITEM_KEYS:
            self._bound(node, key, path, lim.max_items)
        self._values(node, path)
        ref = node.get("$ref")
        if ref is not None:
            if not (isinstance(ref, str) and ref.startswith("#/")):
                raise InvalidInput("only local references ($ref starting with '#/') are "
                                   "accepted", field=f"{path}.$ref")
            self.refs.append((ref, f"{path}.$ref"))
        if "pattern" in node:
            self._pattern(node["pattern"], f"{path}.pattern")
        for key in _SCHEMA_KEYS:
            if key in node:
                child = node[key]
                if isinstance(child, list):  # draft-04 tuple form of items
                    for i, item in enumerate(child):
                        self.walk(item, f"{path}.{key}[{i}]", depth + 1)
                else:
                    self.walk(child, f"{path}.{key}", depth + 1)
        for key in _SCHEMA_LIST_KEYS:
            if key in node:
                items = node[key]
                if not isinstance(items, list):
                    raise InvalidInput(f"{key} must be a list of schemas", field=f"{path}.{key}")
                for i, item in enumerate(items):
                    self.walk(item, f"{path}.{key}[{i}]", depth + 1)
        self._properties(node, path)
        for key in _SCHEMA_MAP_KEYS:
            if key in node:
                self._map(node[key], f"{path}.{key}", depth, key == "properties")

    def _properties(self, node: dict[str, Any], path: str) -> None:
        """Every required name defined; optional properties counted against the budget."""
        members, required = node.get("properties"), node.get("required", [])
        if not isinstance(members, dict):
            return
        needed = ({name for name in required if isinstance(name, str)}
                  if isinstance(required, list) else set())
        unknown = sorted(str(name) for name in needed if name not in members)
        if unknown:  # the grammar cannot write them, so every answer would fail the schema
            raise InvalidInput(f"required names {', '.join(map(repr, unknown))}, not in this "
                               "object's properties; define them there", field=f"{path}.required")
        self.budget.optional += sum(1 for name in members if name not in needed)
        if self.budget.optional > self.limits.max_optional_properties:
            raise InvalidInput(f"the JSON Schema has more than "
                               f"{self.limits.max_optional_properties} optional properties; "
                               "list more of them in required", field=f"{path}.properties")

    def _map(self, members: Any, path: str, depth: int, properties: bool) -> None:
        if not isinstance(members, dict):
            raise InvalidInput("must be an object of schemas", field=path)
        if properties and len(members) > self.limits.max_properties:
            raise InvalidInput(f"{len(members)} properties; at most "
                               f"{self.limits.max_properties} per object are accepted",
                               field=path)
        for name, child in members.items():
            if properties and _AWKWARD_NAME.search(name):  # llama.cpp rejects its grammar
                raise InvalidInput("a property name with a quote, a backslash or a control "
                                   "character cannot be used for constrained decoding",
                                   field=f"{path}.{name}")
            self.walk(child, f"{path}.{name}", depth + 1)

    def _bound(self, node: dict[str, Any], key: str, path: str, cap: int) -> None:
        if key not in node:
            return
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{key} must be a non-negative integer", field=f"{path}.{key}")
        if value > cap:
            raise InvalidInput(f"{key} {value} is too large for constrained decoding; "
                               f"at most {cap} is accepted", field=f"{path}.{key}")

    def _values(self, node: dict[str, Any], path: str) -> None:
        values = node.get("enum")
        if values is None:
            return
        if not isinstance(values, list):
            raise InvalidInput("enum must be a list", field=f"{path}.enum")
        if not values:  # no answer could match: llama.cpp cannot parse the empty alternative
            raise InvalidInput("enum has no values", field=f"{path}.enum")
        if len(values) > self.limits.max_enum:
            raise InvalidInput(f"enum has {len(values)} values; at most "
                               f"{self.limits.max_enum} are accepted", field=f"{path}.enum")

    def _pattern(self, pattern: Any, path: str) -> None:
        if not isinstance(pattern, str):
            raise InvalidInput("pattern must be a string", field=path)
        if len(pattern) > self.limits.max_pattern_chars:
            raise InvalidInput(f"pattern is {len(pattern)} characters; at most "
                               f"{self.limits.max_pattern_chars} are accepted", field=path)
        for match in _QUANTIFIER.finditer(pattern):
            for bound in match.groups():
                if bound and int(bound) > self.limits.max_length:
                    raise InvalidInput(f"pattern repeats up to {bound} times; at most "
                                       f"{self.limits.max_length} are accepted", field=path)
