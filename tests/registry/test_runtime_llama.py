"""The llama.cpp runtime on the real SmolLM2 and Gemma GGUF files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from modelyard_registry.errors import CapabilityMissing, ModelTooLarge
from modelyard_registry.gguf_info import read_gguf
from modelyard_registry.runtimes import GenerationRequest, LlamaCppRuntime, LlamaPool
from modelyard_registry.runtimes.llama_cpp import REPEAT_PENALTY

MB = 2**20
ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number"},
        "priority": {"enum": ["low", "normal", "high"]},
        "items": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["order_id", "amount", "priority", "items"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def pool() -> LlamaPool:
    p = LlamaPool(ram_budget_bytes=2048 * MB, n_threads=2, n_gpu_layers=0, n_ctx=2048)
    yield p
    p.close()


def smol(pool: LlamaPool, path: Path) -> LlamaCppRuntime:
    info = read_gguf(path)
    return LlamaCppRuntime(
        pool, name="smollm2", path=str(path), ram_bytes=info.ram_estimate(2048),
        context_length=info.context_length, chat=True,
    )


def test_chat_generation_reports_exact_usage(pool: LlamaPool, smollm2_path: Path) -> None:
    runtime = smol(pool, smollm2_path)
    messages = [{"role": "user", "content": "Name three colours of the rainbow."}]
    done = runtime.generate(GenerationRequest(messages=messages, max_tokens=40))
    assert done.text.strip()
    assert done.model == "smollm2"
    assert 0 < done.completion_tokens <= 40
    assert done.finish_reason in ("stop", "length")
    assert 0 < done.ttft_s <= done.latency_s
    assert done.tokens_per_s > 0

    # llama-cpp-python's own non-streaming usage for the same call is the reference.
    llama = pool.get("smollm2", str(smollm2_path), 0, None).llama
    raw = llama.create_chat_completion(messages=messages, max_tokens=40, temperature=0.0,
                                       repeat_penalty=REPEAT_PENALTY)
    assert raw["choices"][0]["message"]["content"] == done.text
    assert raw["usage"]["prompt_tokens"] == done.prompt_tokens
    assert raw["usage"]["completion_tokens"] == done.completion_tokens


def test_length_limit_counts_every_token(pool: LlamaPool, smollm2_path: Path) -> None:
    runtime = smol(pool, smollm2_path)
    done = runtime.generate(GenerationRequest(prompt="Once upon a time", max_tokens=12))
    assert done.finish_reason == "length"
    assert done.completion_tokens == 12


def test_json_schema_output_parses_and_validates(pool: LlamaPool, smollm2_path: Path) -> None:
    runtime = smol(pool, smollm2_path)
    text = "Order ORD-7781 for $42.50: two mugs and a teapot. The customer says it is urgent."
    done = runtime.generate(GenerationRequest(
        messages=[{"role": "user", "content": f"Extract the order as JSON.\n\n{text}"}],
        max_tokens=120, json_schema=ORDER_SCHEMA,
    ))
    data = json.loads(done.text)
    jsonschema.validate(data, ORDER_SCHEMA)


def test_stream_pieces_add_up_to_the_completion(pool: LlamaPool, smollm2_path: Path) -> None:
    runtime = smol(pool, smollm2_path)
    request = GenerationRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=20)
    pieces, final = [], None
    for event in runtime.stream(request):
        if event.completion is None:
            pieces.append(event.text)
        else:
            final = event.completion
    assert final is not None and pieces
    assert "".join(pieces) == final.text


def test_completion_only_model_refuses_chat(pool: LlamaPool, gemma_path: Path) -> None:
    runtime = LlamaCppRuntime(
        pool, name="gemma", path=str(gemma_path), ram_bytes=0, context_length=2048, chat=False
    )
    with pytest.raises(CapabilityMissing, match="completion-only"):
        runtime.generate(GenerationRequest(messages=[{"role": "user", "content": "hi"}]))
    done = runtime.generate(GenerationRequest(prompt="The capital of France is", max_tokens=8))
    assert done.completion_tokens > 0


def test_pool_evicts_least_recently_used_under_budget(
    smollm2_path: Path, gemma_path: Path
) -> None:
    smol_ram = read_gguf(smollm2_path).ram_estimate(512)
    gemma_ram = read_gguf(gemma_path).ram_estimate(512)
    budget = max(smol_ram, gemma_ram) + 10 * MB  # room for one model, not both
    assert budget < smol_ram + gemma_ram
    pool = LlamaPool(ram_budget_bytes=budget, n_threads=2, n_gpu_layers=0, n_ctx=512)
    try:
        a = LlamaCppRuntime(pool, name="smol", path=str(smollm2_path), ram_bytes=smol_ram,
                            context_length=8192, chat=True)
        b = LlamaCppRuntime(pool, name="gemma", path=str(gemma_path), ram_bytes=gemma_ram,
                            context_length=32768, chat=False)
        a.generate(GenerationRequest(prompt="Hello", max_tokens=4))
        assert pool.loaded == ["smol"]
        first = pool.get("smol", str(smollm2_path), smol_ram, 8192)
        a.generate(GenerationRequest(prompt="Hello", max_tokens=4))
        assert pool.get("smol", str(smollm2_path), smol_ram, 8192) is first  # loaded once, reused
        b.generate(GenerationRequest(prompt="Hello", max_tokens=4))
        assert pool.loaded == ["gemma"]
        assert pool.used_bytes <= budget
        a.generate(GenerationRequest(prompt="Hello", max_tokens=4))
        assert pool.loaded == ["smol"]
    finally:
        pool.close()


def test_model_larger_than_budget_is_refused(smollm2_path: Path) -> None:
    pool = LlamaPool(ram_budget_bytes=10 * MB, n_threads=2, n_gpu_layers=0, n_ctx=512)
    runtime = LlamaCppRuntime(pool, name="smol", path=str(smollm2_path), ram_bytes=200 * MB,
                              context_length=8192, chat=True)
    with pytest.raises(ModelTooLarge, match="RAM budget"):
        runtime.generate(GenerationRequest(prompt="Hello", max_tokens=4))
    assert pool.loaded == []
