"""A schema-constrained answer is always JSON: no raw control character inside a string.

Checked with llama.cpp's own grammar sampler on the real SmolLM2 vocabulary, in the state of an
answer that has opened a string: the stock converter's grammar lets the newline token in there
(so an answer could stop being JSON), ours does not, while plain text, an escape and the closing
quote stay allowed.
"""

from __future__ import annotations

import ctypes
import json
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
    model = LogprobLlama(model_path=str(smollm2_path), n_ctx=64, n_threads=1, verbose=False,
                         vocab_only=True)
    yield model
    model.close()


class _Grammar:
    """llama.cpp's grammar sampler, fed an answer's tokens, asked about the next one."""

    def __init__(self, llama: LogprobLlama, grammar: LlamaGrammar) -> None:
        self._llama = llama
        self._sampler = llama_cpp.llama_sampler_init_grammar(
            llama._model.vocab, grammar._grammar.encode(), grammar._root.encode())
        assert self._sampler

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
