"""Modelyard's llama.cpp runtime (a runner process) versus raw llama-cpp-python in this process.

Same model, prompt, sampler and thread count.  The runtime's figures include everything a caller
pays: the Unix-socket round trip, the streamed pieces and the token counting.  Runs are
interleaved, so machine noise hits both sides; prints median tokens/s of each and their ratio
(target >= 0.97).

    .venv/bin/python bench/runtime_overhead.py [--runs 7] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import statistics
import time

from llama_cpp import Llama
from modelyard_registry.bundled import BUNDLED
from modelyard_registry.gguf_info import read_gguf
from modelyard_registry.runtimes import GenerationRequest, LlamaCppRuntime, LlamaPool
from modelyard_registry.runtimes.llama_cpp import REPEAT_PENALTY
from modelyard_registry.settings import Settings

PROMPT = [{"role": "user", "content": "Write a long, detailed story about a lighthouse keeper."}]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()

    settings = Settings()
    path = BUNDLED["smollm2-135m"].parts()[0]
    info = read_gguf(path)
    pool = LlamaPool(ram_budget_bytes=2**31, n_threads=settings.n_threads, n_gpu_layers=0,
                     n_ctx=2048)
    runtime = LlamaCppRuntime(pool, name="smollm2-135m", path=str(path),
                              ram_bytes=info.ram_estimate(2048), context_length=8192, chat=True)
    llama = Llama(model_path=str(path), n_ctx=2048, n_threads=settings.n_threads, n_gpu_layers=0,
                  verbose=False)
    request = GenerationRequest(messages=PROMPT, max_tokens=args.max_tokens, temperature=0.0)

    def ours() -> tuple[float, int]:
        done = runtime.generate(request)
        return done.tokens_per_s, done.completion_tokens

    def raw() -> tuple[float, int]:
        start = time.perf_counter()
        out = llama.create_chat_completion(messages=PROMPT, max_tokens=args.max_tokens,
                                           temperature=0.0, repeat_penalty=REPEAT_PENALTY)
        n = out["usage"]["completion_tokens"]
        return n / (time.perf_counter() - start), n

    ours(), raw()  # warm-up: start the runner, page in weights, fill caches
    ours_tps, raw_tps = [], []
    for i in range(args.runs):
        first, second = (ours, raw) if i % 2 == 0 else (raw, ours)
        for fn in (first, second):
            tps, n = fn()
            (ours_tps if fn is ours else raw_tps).append(tps)
    o, r = statistics.median(ours_tps), statistics.median(raw_tps)
    print(f"model: smollm2-135m Q4_1, threads={settings.n_threads}, max_tokens={args.max_tokens}, "
          f"runs={args.runs} each, interleaved, completion tokens/run={n}")
    print(f"raw llama-cpp-python : {r:7.1f} tokens/s (median; min {min(raw_tps):.1f}, "
          f"max {max(raw_tps):.1f})")
    print(f"modelyard runner     : {o:7.1f} tokens/s (median; min {min(ours_tps):.1f}, "
          f"max {max(ours_tps):.1f})")
    print(f"ratio modelyard/raw  : {o / r:.3f}  (target >= 0.97)")
    llama.close()
    pool.close()


if __name__ == "__main__":
    main()
