"""What the job path costs a generation: tokens/s of one SmolLM2 generation submitted through
the API -> Redis -> Celery worker -> llama.cpp runtime (wall time from submit until the job's
SSE stream ends), versus the same runtime called directly in this process.  Runs interleaved,
same run.

    .venv/bin/python bench/e2e_overhead.py [--runs 5] [--tokens 256]
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from _stack import stack
from modelyard_registry import bundled
from modelyard_registry.catalog import ModelEntry
from modelyard_registry.runtimes import GenerationRequest, RuntimeFactory
from modelyard_registry.settings import Settings

PROMPT = "Write a long story about a lighthouse keeper and a storm. Use many details."


def through_jobs(base_url: str, key: str, tokens: int) -> tuple[float, int, float]:
    """Submit, follow the job's SSE stream to its terminal event (as a client would), read it.

    Returns (end-to-end tokens/s, tokens, tokens/s of the model call inside the worker).
    """
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                      timeout=120) as http:
        start = time.perf_counter()
        job = http.post("/v1/products/generate/jobs", json={
            "input": {"prompt": PROMPT, "max_tokens": tokens},
            "options": {"model": "smollm2-135m"},
        }).json()
        with http.stream("GET", f"/v1/jobs/{job['id']}/events") as events:
            for _ in events.iter_lines():
                pass  # the server closes the stream after the terminal event
        elapsed = time.perf_counter() - start
        job = http.get(f"/v1/jobs/{job['id']}").json()
    assert job["status"] == "succeeded", job["error"]
    n = int(job["result"]["completion_tokens"])
    call = job["calls"][0]
    return n / elapsed, n, call["completion_tokens"] / call["latency_s"]


def direct(runtime_factory: RuntimeFactory, entry: ModelEntry, tokens: int) -> tuple[float, int]:
    runtime = runtime_factory.for_entry(entry)
    start = time.perf_counter()
    done = runtime.generate(GenerationRequest(
        messages=[{"role": "user", "content": PROMPT}], max_tokens=tokens))
    return done.completion_tokens / (time.perf_counter() - start), done.completion_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    settings = Settings()
    path = bundled.BUNDLED["smollm2-135m"].parts()[0]
    entry = ModelEntry(name="smollm2-135m", backend="llama_cpp", gguf_path=str(path),
                       context_length=8192, capabilities=["chat"])
    factory = RuntimeFactory(settings)
    with stack(args.redis_url, concurrency=1) as s:
        through_jobs(s.base_url, s.key, 16)  # warm-up: the worker loads the model
        direct(factory, entry, 16)
        rows = []
        for i in range(args.runs):
            jobs_tps, n_jobs, worker_tps = through_jobs(s.base_url, s.key, args.tokens)
            direct_tps, n_direct = direct(factory, entry, args.tokens)
            rows.append((jobs_tps, direct_tps))
            print(f"run {i + 1}: via jobs {jobs_tps:6.1f} tok/s ({n_jobs} tokens; the call "
                  f"inside the worker {worker_tps:6.1f})   direct {direct_tps:6.1f} tok/s "
                  f"({n_direct} tokens)   ratio {jobs_tps / direct_tps:.3f}", flush=True)
    jobs_med = statistics.median(r[0] for r in rows)
    direct_med = statistics.median(r[1] for r in rows)
    ratios = sorted(r[0] / r[1] for r in rows)
    print(f"median: via jobs {jobs_med:.1f} tok/s, direct {direct_med:.1f} tok/s, "
          f"median ratio {statistics.median(ratios):.3f} (target >= 0.95; "
          f"min {ratios[0]:.3f}, max {ratios[-1]:.3f})")
    factory.close()


if __name__ == "__main__":
    main()
