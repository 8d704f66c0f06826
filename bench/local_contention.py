"""Several local generations at once on the CPU: taking turns (CPU slots) versus all at once.

Each "process" is its own runner pool, as each worker process and the API have their own, so
every one of them starts its own llama.cpp runner with ``n_threads`` threads: ``--procs 2`` on a
2-core machine is what two worker processes running local jobs at the same time do.  Each pool
runs ``--calls`` generations back to back; all pools start together.  Rounds alternate between
no limit (``local_cpu_slots = 0``) and the default (``cores // n_threads`` slots,
``runtimes/cpu_slots.py``), so machine-load swings hit both.  Prints per mode the wall time of
the round, the aggregate completion tokens/s and the median seconds per call, and the load.

    .venv/bin/python bench/local_contention.py [--procs 2] [--calls 3] [--max-tokens 96]
        [--model PATH.gguf] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelyard_registry.bundled import BUNDLED
from modelyard_registry.gguf_info import read_gguf
from modelyard_registry.runtimes import GenerationRequest, LlamaCppRuntime, LlamaPool
from modelyard_registry.runtimes.cpu_slots import auto_slots
from modelyard_registry.settings import Settings

PROMPT = [{"role": "user", "content": "Write a long, detailed story about a lighthouse keeper."}]


def run_round(runtimes: list[LlamaCppRuntime], calls: int, max_tokens: int
              ) -> tuple[float, int, list[float]]:
    request = GenerationRequest(messages=PROMPT, max_tokens=max_tokens, temperature=0.0)

    def one_process(runtime: LlamaCppRuntime) -> tuple[int, list[float]]:
        tokens, seconds = 0, []
        for _ in range(calls):
            done = runtime.generate(request)
            tokens += done.completion_tokens
            seconds.append(done.latency_s)
        return tokens, seconds

    start = time.perf_counter()
    with ThreadPoolExecutor(len(runtimes)) as pool:
        results = list(pool.map(one_process, runtimes))
    wall = time.perf_counter() - start
    return wall, sum(t for t, _ in results), [s for _, ss in results for s in ss]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", type=Path, default=None,
                        help="a GGUF (default: the bundled SmolLM2-135M)")
    args = parser.parse_args()
    settings = Settings()
    path = args.model or BUNDLED["smollm2-135m"].parts()[0]
    ram = read_gguf(path).ram_estimate(2048)
    slots = auto_slots(settings.n_threads)
    modes = {"no limit": 0, f"{slots} slot(s)": slots}
    pools = {mode: [LlamaPool(ram_budget_bytes=2**32, n_threads=settings.n_threads,
                              n_gpu_layers=0, n_ctx=2048, cpu_slots=n)
                    for _ in range(args.procs)] for mode, n in modes.items()}
    runtimes = {mode: [LlamaCppRuntime(p, name=path.stem, path=str(path), ram_bytes=ram,
                                       context_length=2048, chat=True) for p in ps]
                for mode, ps in pools.items()}
    try:
        for rts in runtimes.values():  # warm-up: start every runner, page the weights in
            for rt in rts:
                rt.generate(GenerationRequest(messages=PROMPT, max_tokens=4))
        figures: dict[str, list[tuple[float, int, list[float]]]] = {m: [] for m in modes}
        for r in range(args.rounds):
            order = list(modes) if r % 2 == 0 else list(reversed(modes))
            for mode in order:
                figures[mode].append(run_round(runtimes[mode], args.calls, args.max_tokens))
        print(f"{path.name}: {args.procs} processes x {args.calls} calls x {args.max_tokens} "
              f"tokens, n_threads={settings.n_threads}, {os.cpu_count()} cores, "
              f"{args.rounds} rounds interleaved, load {os.getloadavg()[0]:.1f}")
        for mode, rows in figures.items():
            walls = [w for w, _, _ in rows]
            tps = [t / w for w, t, _ in rows]
            lat = statistics.median([s for _, _, ss in rows for s in ss])
            print(f"{mode:>12}: wall {statistics.median(walls):6.1f} s   "
                  f"{statistics.median(tps):6.1f} tokens/s in all   median call {lat:5.1f} s   "
                  f"(rounds: {', '.join(f'{x:.1f}' for x in tps)} tokens/s)")
    finally:
        for ps in pools.values():
            for p in ps:
                p.close()


if __name__ == "__main__":
    main()
