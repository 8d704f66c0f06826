"""A schema-constrained answer is always JSON, and a ``pattern`` constrains it as written.

Checked with llama.cpp's own grammar sampler on the real SmolLM2 model: in the state of an
answer that has opened a string, the stock converter's grammar lets the newline token in (so an
answer could stop being JSON), ours does not; common patterns (``\\d``, ``\\.``, no anchors)
make grammars llama.cpp parses, and the model's answer matches them.
"""

from __future__ import annotations

import ctypes
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import pytest
from llama_cpp.llama_grammar import LlamaGrammar
from modelyard_registry.runtimes.json_grammar import schema_gbnf, schema_grammar
from modelyard_registry.runtimes.llama_runner import LogprobLlama

SCHEMA = {"type": "object", "properties": {"poem": {"type": "string"}}, "required": ["poem"]}
OPENED = '{"poem": "Waves'  # an answer so far, inside the string


@pytest.fixture(scope="module")
def llama(smollm2_path: Path) -> Iterator[LogprobLlama]:
    model = LogprobLlama(model_path=str(smollm2_path), n_ctx=256, n_threads=2, verbose=False)
    yield model
    model.close()


class _Grammar:
    """llama.cpp's grammar sampler, fed an answer's tokens, asked about the next one."""

    def __init__(self, llama: LogprobLlama, grammar: LlamaGrammar) -> None:
        self._llama = llama
        self._sampler = llama_cpp.llama_sampler_init_grammar(
            llama._model.vocab, grammar._grammar.encode(), grammar._root.encode())
        assert self._sampler, "llama.cpp could not parse the grammar"

    def feed(self, text: str) -> None:
        for token in self._llama.tokenize(text.encode(), add_bos=False, special=False):
            assert self.allows_token(token), (text, token)
            llama_cpp.llama_sampler_accept(self._sampler, token)

    def allows(self, text: str) -> bool:
        ids = self._llama.tokenize(text.encode(), add_bos=False, special=False)
        assert len(ids) == 1, (text, ids)
        return self.allows_token(ids[0])

    def allows_token(self, token: int) -> bool:
        one: Any = (llama_cpp.llama_token_data * 1)()
        one[0].id, one[0].logit = token, 0.0
        array = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(array))
        return bool(one[0].logit > float("-inf"))

    def close(self) -> None:
        llama_cpp.llama_sampler_free(self._sampler)


def test_no_raw_newline_inside_a_string(llama: LogprobLlama) -> None:
    stock = _Grammar(llama, LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False))
    ours = _Grammar(llama, schema_grammar(SCHEMA))
    try:
        stock.feed(OPENED)
        ours.feed(OPENED)
        assert stock.allows("\n")  # the premise: llama-cpp-python's grammar lets it in
        assert not ours.allows("\n") and not ours.allows("\t")
        assert ours.allows(" crash") and ours.allows("\\") and ours.allows('"')
    finally:
        stock.close()
        ours.close()


def test_a_schema_with_refs_is_left_as_it_was() -> None:
    address = {"type": "object", "properties": {"city": {"type": "string"}}}
    schema = {"type": "object", "$defs": {"address": address},
              "properties": {"home": {"$ref": "#/$defs/address"}}, "required": ["home"]}
    before = json.dumps(schema)
    first = schema_gbnf(schema)
    assert json.dumps(schema) == before and schema_gbnf(schema) == first
    assert "home-kv" in first and "city" in first


def test_a_pattern_in_data_is_data() -> None:
    schema = {"type": "object", "properties": {"rule": {"const": {"pattern": r"\d+"}}}}
    assert '\\\\d+' in schema_gbnf(schema)  # the constant as written, escaped for JSON
    # ... while a property *named* "const" or "pattern" is a schema like any other
    named = {"type": "object", "properties": {
        "const": {"type": "string", "pattern": r"^\d+$"},
        "pattern": {"type": "string", "pattern": r"^\w+$"}}}
    gbnf = schema_gbnf(named)
    assert "[0-9]+" in gbnf and "[0-9A-Za-z_]+" in gbnf and "\\d" not in gbnf


PATTERNS = [  # (pattern, a value it matches)
    (r"^\d+$", "2024"),
    (r"^[A-Z]{2}-\d{4}$", "QK-7730"),
    (r"^\w+@\w+\.\w+$", "ana@example.com"),
    (r"\d{3}", "room 123, floor 2"),  # JSON Schema patterns match anywhere in the string
    (r"cat|dog", "a dog here"),  # either one, anywhere
    (r"^\+?[\d -]+$", "+44 20 8395"),
]


@pytest.mark.parametrize(("pattern", "value"), PATTERNS)
def test_patterns_make_grammars_llama_cpp_parses(llama: LogprobLlama, pattern: str,
                                                 value: str) -> None:
    assert re.search(pattern, value)
    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}},
              "required": ["v"]}
    grammar = _Grammar(llama, schema_grammar(schema))
    try:
        grammar.feed(json.dumps({"v": value}))  # every token of a matching answer is allowed
    finally:
        grammar.close()


def test_the_stock_converter_failed_on_a_digit_class(llama: LogprobLlama) -> None:
    stock = LlamaGrammar.from_json_schema(json.dumps({"type": "string", "pattern": r"^\d+$"}),
                                          verbose=False)
    sampler = llama_cpp.llama_sampler_init_grammar(
        llama._model.vocab, stock._grammar.encode(), stock._root.encode())
    assert not sampler  # the premise of the test above


def test_a_negated_class_and_a_dot_keep_the_string_json(llama: LogprobLlama) -> None:
    for pattern in (r"^[^a-z]+$", r"^.+$"):
        schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}}}
        grammar = _Grammar(llama, schema_grammar(schema))
        try:
            grammar.feed('{"v": "X')
            assert not grammar.allows("\\") and not grammar.allows("\n")
        finally:
            grammar.close()


def test_the_answer_matches_the_pattern(llama: LogprobLlama) -> None:
    pattern = r"^[A-Z]{2}-\d{4}$"
    schema = {"type": "object", "properties": {"order": {"type": "string", "pattern": pattern}},
              "required": ["order"]}
    llama.reset()
    out = llama.create_completion(prompt="The order id of 'order QK-7730 is late' as JSON:",
                                  max_tokens=30, temperature=0.0, grammar=schema_grammar(schema))
    answer = json.loads(str(out["choices"][0]["text"]))
    assert re.fullmatch(pattern, answer["order"])
