"""Where llama.cpp's JSON-Schema grammars break: the measurements behind ``schema_limits``' caps.

Each schema runs in a fresh process (a crash is the finding, not the end of the run): build the
grammar with ``LlamaGrammar.from_json_schema``, then sample three tokens with it on SmolLM2.
Prints seconds for both, or how the process died.

    .venv/bin/python bench/schema_caps.py [--timeout 120]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from typing import Any

from modelyard_registry.bundled import BUNDLED

PROBE = """
import json, sys, time
from llama_cpp import Llama
from llama_cpp.llama_grammar import LlamaGrammar
llama = Llama(model_path=sys.argv[1], n_ctx=512, n_threads=1, verbose=False)
t = time.perf_counter()
grammar = LlamaGrammar.from_json_schema(sys.argv[2], verbose=False)
built = time.perf_counter() - t
t = time.perf_counter()
llama.create_completion(prompt="JSON:", max_tokens=3, grammar=grammar, temperature=0)
print(json.dumps({"build_s": built, "sample3_s": time.perf_counter() - t}))
"""


def string(**kw: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"a": {"type": "string", **kw}}}


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "object", "properties": {"a": node}}
    return node


def cases() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    out += [(f"maxLength {n}", string(maxLength=n)) for n in (500, 1000, 1200, 2000, 5000)]
    out += [(f"minLength {n}", string(minLength=n)) for n in (500, 1000, 5000)]
    out += [(f"maxItems {n}", {"type": "array", "items": {"type": "string"}, "maxItems": n})
            for n in (256, 1000, 2000, 5000)]
    out += [(f"minItems {n}", {"type": "array", "items": {"type": "string"}, "minItems": n})
            for n in (256, 1000)]
    out += [(f"depth {d}", nested(d)) for d in (16, 50, 100)]
    out += [(f"enum {n}", {"enum": [f"v{i}" for i in range(n)]}) for n in (500, 5000)]
    out += [(f"properties {n}", {"type": "object",
                                 "properties": {f"p{i}": {"type": "string"} for i in range(n)}})
            for n in (100, 500, 1000)]
    out += [(f"pattern a{{1,{n}}}", string(pattern=f"^a{{1,{n}}}$")) for n in (500, 1000, 3000)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    model = str(BUNDLED["smollm2-135m"].parts()[0])
    print(f"{'schema':<22} result")
    for label, schema in cases():
        try:
            done = subprocess.run([sys.executable, "-c", PROBE, model, json.dumps(schema)],
                                  capture_output=True, text=True, timeout=args.timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            print(f"{label:<22} no answer within {args.timeout:g}s")
            continue
        if done.returncode < 0:
            result = f"killed by {signal.Signals(-done.returncode).name}"
        elif done.returncode:
            last = (done.stderr.strip().splitlines() or ["?"])[-1][:70]
            result = f"failed: {last}"
        else:
            t = json.loads(done.stdout)
            result = f"grammar {t['build_s']:.3f}s, 3 tokens {t['sample3_s']:.2f}s"
        print(f"{label:<22} {result}", flush=True)


if __name__ == "__main__":
    main()
