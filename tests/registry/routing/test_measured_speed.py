"""A model is priced on the fastest of its current measurements, not a mean dragged down by load.

A measurement can only be slowed by what else ran on the machine; on the ladder an n-weighted mean
over every row priced Qwen2.5-0.5B (suites run at load 6-9) above Qwen2.5-1.5B, and the router
took the 1.5B as the cheaper adequate rung.  Pure: ``candidate_from`` over Score rows, ``decide``.
"""

from __future__ import annotations

from modelyard_registry.catalog import Backend, ModelEntry
from modelyard_registry.routing.candidates import MachineLimits
from modelyard_registry.routing.decide import decide
from modelyard_registry.routing.snapshot import candidate_from
from modelyard_registry.scores import Score
from modelyard_registry.taskspec import TaskSpec

LIMITS = MachineLimits(ram_budget_bytes=4096 * 2**20, n_ctx=4096, machine_cost_per_hour=0.10)


def _entry(name: str) -> ModelEntry:
    return ModelEntry(name=name, backend=Backend.llama_cpp, capabilities=["chat"],
                      context_length=8192, ram_bytes=2**28)


def _row(name: str, kind: str, suite: str, tokens_per_s: float, latency_s: float,
         n: int = 10) -> Score:
    return Score(model_name=name, kind=kind, metric="m", value=0.9, n=n, ci_low=0.0,
                 ci_high=1.0, suite_version=suite, latency_s=latency_s,
                 tokens_per_s=tokens_per_s, prompt_tokens_mean=200, completion_tokens_mean=40)


def test_the_fastest_current_measurement_prices_the_model() -> None:
    rows = [  # classify and extract measured while the machine was busy, summarize when quiet
        _row("small", "classify", "classify-a:sample10", 3.0, 20.0),
        _row("small", "extract", "extract-a:sample10", 4.0, 16.0),
        _row("small", "summarize", "summarize-a:sample10", 40.0, 1.5),
    ]
    candidate = candidate_from(_entry("small"), rows)
    assert candidate.tokens_per_s == 40.0
    assert candidate.prefill_tokens_per_s is not None
    assert candidate.prefill_tokens_per_s > 200 / 1.5  # the quiet row's prompt rate


def test_a_superseded_suite_no_longer_sets_the_speed() -> None:
    rows = [_row("m", "summarize", "summarize-old", 90.0, 0.6, n=150),  # an older suite version
            _row("m", "summarize", "summarize-new:sample10", 30.0, 1.8)]
    rows[1].created_at = rows[0].created_at.replace(year=rows[0].created_at.year + 1)
    assert candidate_from(_entry("m"), rows).tokens_per_s == 30.0


def test_a_smaller_model_measured_under_load_is_still_the_cheaper_one() -> None:
    small = candidate_from(_entry("small"), [
        _row("small", "classify", "classify-a:sample10", 2.0, 25.0),  # busy machine
        _row("small", "summarize", "summarize-a:sample10", 45.0, 1.2),
    ])
    large = candidate_from(_entry("large"), [
        _row("large", "summarize", "summarize-a:sample10", 15.0, 3.5),
    ])
    decision = decide(TaskSpec.build(kind="summarize", max_output_tokens=100), 300,
                      [small, large], LIMITS)
    cost = {v.name: v.expected_cost_usd for v in decision.candidates}
    assert cost["small"] < cost["large"]
