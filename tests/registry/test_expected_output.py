"""Expected cost and latency use each model's measured answer length for the kind, capped by the
request's max tokens, not the max tokens themselves: a terse model gets credit for being terse."""

from __future__ import annotations

import pytest
from modelyard_registry.routing.candidates import (
    Candidate,
    MachineLimits,
    expected_cost,
    expected_output_tokens,
)
from modelyard_registry.routing.decide import decide
from modelyard_registry.taskspec import TaskSpec

LIMITS = MachineLimits(ram_budget_bytes=2**32, n_ctx=4096, machine_cost_per_hour=3.6,
                       unmeasured_tokens_per_s=10.0, prefill_factor=8.0)


def local(name: str, tps: float, lengths: dict[str, float]) -> Candidate:
    return Candidate(
        name=name, backend="llama_cpp", capabilities=frozenset({"chat"}), context_length=8192,
        price_in=0.0, price_out=0.0, tokens_per_s=tps, health="unknown", enabled=True,
        ram_bytes=None, scores={"classify": 0.9, "summarize": 0.9}, prefill_tokens_per_s=1000.0,
        output_tokens=lengths,
    )


def test_a_classification_is_expected_to_take_its_measured_length() -> None:
    terse = local("terse", tps=20.0, lengths={"classify": 6.0})
    decision = decide(TaskSpec(kind="classify", max_output_tokens=256), 200, [terse], LIMITS)
    chosen = decision.require()
    # 200 prompt tokens at 1000/s + 6 answer tokens at 20/s, not 256 / 20 = 12.8 s
    assert chosen.expected_latency_s == pytest.approx(0.2 + 0.3)
    assert chosen.expected_cost_usd == pytest.approx(0.5 / 1000)
    assert chosen.expected_cost_usd == pytest.approx(expected_cost(terse, 200, 6, LIMITS))


def test_a_terse_slower_model_beats_a_verbose_faster_one() -> None:
    terse = local("terse", tps=20.0, lengths={"classify": 6.0})
    verbose = local("verbose", tps=50.0, lengths={"classify": 120.0})
    decision = decide(TaskSpec(kind="classify", max_output_tokens=256), 200, [verbose, terse],
                      LIMITS)
    assert decision.require().name == "terse"
    # priced on max_tokens alone, the faster model would have looked cheaper
    assert expected_cost(verbose, 200, 256, LIMITS) < expected_cost(terse, 200, 256, LIMITS)


def test_max_tokens_caps_the_measured_length_and_unmeasured_models_budget_it_all() -> None:
    wordy = local("wordy", tps=10.0, lengths={"summarize": 180.0, "classify": 4.0})
    assert expected_output_tokens(wordy, "summarize", 64) == 64
    assert expected_output_tokens(wordy, "summarize", 512) == 180
    assert expected_output_tokens(wordy, "qa", 100) == 100  # no measurement for qa
    assert expected_output_tokens(wordy, "chat", 500) == 92  # mean over the measured kinds
    capped = decide(TaskSpec(kind="summarize", max_output_tokens=64), 0, [wordy], LIMITS)
    assert capped.require().expected_latency_s == pytest.approx(6.4)


def test_the_context_window_still_reserves_max_tokens() -> None:
    terse = local("terse", tps=20.0, lengths={"classify": 6.0})
    small = Candidate(**{**{f: getattr(terse, f) for f in (
        "name", "backend", "capabilities", "price_in", "price_out", "tokens_per_s", "health",
        "enabled", "ram_bytes", "scores", "prefill_tokens_per_s", "output_tokens")},
        "context_length": 1000})
    decision = decide(TaskSpec(kind="classify", max_output_tokens=900), 200, [small], LIMITS)
    assert decision.chosen is None
    assert "context window 1000 < 1100 tokens needed" in decision.reason
