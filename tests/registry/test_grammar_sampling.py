"""Greedy grammar sampling that checks the best token first answers exactly as llama.cpp's chain.

Both samplers run in this process on the real SmolLM2 GGUF (the runner's ``LogprobLlama``):
``check_first`` False is llama-cpp-python's own chain (penalties -> grammar over the whole
vocabulary -> greedy), the reference the fast path must match token for token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from llama_cpp.llama_grammar import LlamaGrammar
from modelyard_registry.runtimes.grammar_sampling import CheckFirstGreedy
from modelyard_registry.runtimes.llama_runner import LogprobLlama
from modelyard_registry.runtimes.runner_wire import REPEAT_PENALTY

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number"},
        "items": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
    },
    "required": ["order_id", "amount", "items"],
    "additionalProperties": False,
}
PROMPTS = [
    "Order A-1182 for 3 lamps, 2 chairs and a rug totals 412.50 EUR. JSON:",
    "Extract the order as JSON. Text: ticket 77, order id ZX-9, amount forty, items: pen, pen,"
    " pen, pen. JSON:",
    "Return JSON for the order 0000 of 0 with items a, b, c:",
]


@pytest.fixture(scope="module")
def llama(smollm2_path: Path) -> Iterator[LogprobLlama]:
    model = LogprobLlama(model_path=str(smollm2_path), n_ctx=512, n_threads=2, verbose=False)
    yield model
    model.close()


def _complete(llama: LogprobLlama, prompt: str, grammar: str | None, check_first: bool,
              max_tokens: int = 160) -> tuple[str, Any, str]:
    llama.check_first = check_first
    llama.reset()  # evaluate the prompt afresh: a cached prompt's replayed logits differ a little
    parsed = (LlamaGrammar.from_string(grammar, verbose=False) if grammar is not None
              else LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False))
    out = llama.create_completion(prompt=prompt, max_tokens=max_tokens, temperature=0.0,
                                  repeat_penalty=REPEAT_PENALTY, grammar=parsed)
    choice = out["choices"][0]
    return str(choice["text"]), llama._sampler, str(choice["finish_reason"])


@pytest.mark.parametrize("prompt", PROMPTS)
def test_same_answer_as_the_whole_vocabulary_chain(llama: LogprobLlama, prompt: str) -> None:
    fast, sampler, finish = _complete(llama, prompt, None, check_first=True)
    assert isinstance(sampler, CheckFirstGreedy)
    # The fast path was taken for most steps: the point of it.
    assert sampler.steps > 5 and sampler.full_checks < sampler.steps / 2
    reference, stock, _ = _complete(llama, prompt, None, check_first=False)
    assert not isinstance(stock, CheckFirstGreedy)
    # Token for token: the repeat penalty (its 64-token window rolls over in the first prompt's
    # 160-token answer), the tie break and the grammar's state all agree.
    assert fast == reference
    if finish == "stop":
        jsonschema.validate(json.loads(fast), SCHEMA)


def test_rejected_best_token_falls_back_to_the_allowed_ones(llama: LogprobLlama) -> None:
    # No model's favourite next token here is "z": every step's best token is rejected.
    grammar = 'root ::= "zq" [0-9] [0-9]'
    fast, sampler, _ = _complete(llama, "The capital of France is", grammar, check_first=True)
    assert isinstance(sampler, CheckFirstGreedy)
    assert sampler.full_checks >= 1
    reference, _, _ = _complete(llama, "The capital of France is", grammar, check_first=False)
    assert fast == reference
    assert fast[:2] == "zq" and fast[2:].isdigit() and len(fast) == 4


def test_sampling_with_a_temperature_keeps_the_chain(llama: LogprobLlama) -> None:
    llama.check_first = True
    parsed = LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False)
    out = llama.create_completion(prompt=PROMPTS[0], max_tokens=60, temperature=0.7, seed=1,
                                  grammar=parsed)
    assert not isinstance(llama._sampler, CheckFirstGreedy)
    assert str(out["choices"][0]["text"]).startswith("{")
