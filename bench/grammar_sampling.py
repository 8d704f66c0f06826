"""JSON-constrained generation speed: the best token checked first versus llama.cpp's chain.

Runs the runner's own ``Model.generate`` in this process on items of a built-in suite (the
eval's exact chat request, JSON schema included), each item twice, alternating which sampler
goes first: ``grammar_sampling.CheckFirstGreedy`` and llama-cpp-python's stock chain (penalties
-> grammar over the whole vocabulary -> greedy).  Prints per sampler the decode tokens/s over
all items, the share of steps whose best token the grammar rejected, and whether every answer
is identical (it must be: both are greedy over the same allowed tokens).

    .venv/bin/python bench/grammar_sampling.py --model PATH.gguf [--kind extract] [--items 12]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

from modelyard_registry.evals import prompts
from modelyard_registry.evals.suites import load_suite
from modelyard_registry.runtimes.base import ToolCallDelta
from modelyard_registry.runtimes.grammar_sampling import CheckFirstGreedy
from modelyard_registry.runtimes.llama_runner import Model
from modelyard_registry.runtimes.runner_wire import Done, Failed, Generate, Pieces

BUILDERS = {"extract": prompts.extract, "classify": prompts.classify, "tools": prompts.tools}


def run(model: Model, message: Generate) -> tuple[str, int, float]:
    """One generation: (text, completion tokens, seconds)."""
    ours, theirs = Pipe()
    parts: list[str] = []
    done: list[Any] = []

    def read() -> None:
        while True:
            msg = ours.recv()
            if isinstance(msg, Pieces):
                parts.append(msg.text)
            elif isinstance(msg, (Done, Failed)):
                done.append(msg)
                return
            elif isinstance(msg, ToolCallDelta):  # its id is random: compare the rest
                parts.append(f"[call {msg.name}]" if msg.name else msg.arguments)

    reader = threading.Thread(target=read)
    reader.start()
    start = time.perf_counter()
    model.generate(message, theirs)
    reader.join()
    seconds = time.perf_counter() - start
    end = done[0]
    if isinstance(end, Failed):
        raise SystemExit(f"generation failed: {end}")
    return "".join(parts), end.completion_tokens, seconds - end.ttft_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a chat GGUF")
    parser.add_argument("--kind", choices=sorted(BUILDERS), default="extract")
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    model = Model(str(args.model), n_ctx=2048, n_threads=args.threads, n_gpu_layers=0)
    items = load_suite(args.kind).sample(args.items).items
    totals: dict[bool, list[float]] = {True: [0, 0.0], False: [0, 0.0]}
    full = steps = 0
    same = 0
    print(f"{args.model.name}, {args.kind}, {len(items)} items, load "
          f"{os.getloadavg()[0]:.1f} at start")
    for i, item in enumerate(items):
        request = BUILDERS[args.kind](item, True)
        message = Generate(messages=request.messages, prompt=None, max_tokens=request.max_tokens,
                           temperature=0.0, stop=list(request.stop or []),
                           json_schema=request.json_schema, logprobs=False, tools=request.tools,
                           tool_choice=request.tool_choice, tool_name=request.tool_name)
        texts = {}
        for check_first in ((True, False) if i % 2 == 0 else (False, True)):
            model.llama.check_first = check_first
            model.llama.reset()  # both evaluate the prompt afresh (a cached one is replayed)
            text, tokens, decode_s = run(model, message)
            texts[check_first] = text
            totals[check_first][0] += tokens
            totals[check_first][1] += decode_s
            sampler = model.llama._sampler
            if check_first and isinstance(sampler, CheckFirstGreedy):
                full += sampler.full_checks
                steps += sampler.steps
        same += texts[True] == texts[False]
        if texts[True] != texts[False]:
            print(f"  item {i}: answers differ\n    {texts[True]!r}\n    {texts[False]!r}")
    for check_first, name in ((False, "llama.cpp chain"), (True, "best token first")):
        n, seconds = totals[check_first]
        print(f"{name:>17}: {n:.0f} tokens, {n / seconds:.1f} tokens/s decode")
    ratio = (totals[True][0] / totals[True][1]) / (totals[False][0] / totals[False][1])
    print(f"speed-up {ratio:.2f}x; whole-vocabulary checks on {full}/{steps} steps; "
          f"identical answers {same}/{len(items)}; load {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
