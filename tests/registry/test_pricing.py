"""Cost arithmetic, and measured speed travelling from eval results to the router's snapshot."""

from __future__ import annotations

import pytest
from modelyard_registry import catalog
from modelyard_registry.evals.runner import ItemResult, SuiteResult, store_score
from modelyard_registry.pricing import (
    estimate_tokens,
    expected_local_cost,
    expected_local_seconds,
    local_cost,
    prefill_rate,
    remote_cost,
)
from modelyard_registry.routing.confidence import routed_score
from modelyard_registry.routing.snapshot import load_candidates
from modelyard_registry.settings import Settings
from sqlmodel import Session


def test_remote_cost_is_per_million_tokens() -> None:
    assert remote_cost(1_000_000, 0, 0.5, 9.0) == pytest.approx(0.5)
    assert remote_cost(2000, 500, 1.0, 4.0) == pytest.approx(0.002 + 0.002)
    assert remote_cost(0, 0, 1.0, 1.0) == 0.0


def test_local_cost_is_wall_time_times_machine_rate() -> None:
    assert local_cost(3600, 0.10) == pytest.approx(0.10)
    assert local_cost(1.5, 0.36) == pytest.approx(1.5 * 0.0001)
    assert local_cost(-1.0, 0.36) == 0.0


def test_expected_local_cost_budgets_prefill_and_all_output_tokens() -> None:
    seconds = expected_local_seconds(800, 200, tokens_per_s=50.0, prefill_tokens_per_s=400.0)
    assert seconds == pytest.approx(2.0 + 4.0)
    assert expected_local_cost(800, 200, 50.0, 400.0, 0.36) == pytest.approx(6.0 * 0.0001)


def test_token_estimate_is_chars_over_four_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2


def _suite(prefill_tps: float, decode_tps: float) -> SuiteResult:
    """Items timed exactly as a backend with these two rates would take them."""
    result = SuiteResult("m", "qa", "qa-test")
    for i, (prompt, out) in enumerate([(120, 10), (300, 25), (80, 3), (500, 40)]):
        ttft = prompt / prefill_tps
        latency = ttft + (out - 1) / decode_tps
        result.items.append(ItemResult(str(i), 1.0, "x", prompt, out, latency, ttft))
    return result


def test_prefill_rate_is_recovered_from_a_score_rows_means() -> None:
    result = _suite(prefill_tps=600.0, decode_tps=40.0)
    assert result.tokens_per_s == pytest.approx(40.0)
    derived = prefill_rate(
        latency_s=result.latency_s,
        prompt_tokens_mean=result.prompt_tokens_mean,
        completion_tokens_mean=result.completion_tokens_mean,
        tokens_per_s=result.tokens_per_s,
    )
    assert derived == pytest.approx(600.0)


def test_prefill_rate_is_none_without_figures() -> None:
    assert prefill_rate(latency_s=None, prompt_tokens_mean=10, completion_tokens_mean=5,
                        tokens_per_s=10) is None
    # a derivation that is not positive (inconsistent means) gives no rate, not a negative one
    assert prefill_rate(latency_s=0.1, prompt_tokens_mean=10, completion_tokens_mean=50,
                        tokens_per_s=10) is None


def test_measured_speed_reaches_the_router_candidate(session: Session, settings: Settings) -> None:
    catalog.add_model(session, catalog.ModelCreate(
        name="m", backend=catalog.Backend.llama_cpp, gguf_path="/nowhere/m.gguf",
        capabilities=["chat", "completion"], context_length=2048, ram_bytes=10,
    ))
    store_score(session, _suite(prefill_tps=600.0, decode_tps=40.0))
    classify = _suite(prefill_tps=600.0, decode_tps=40.0)
    classify.kind, classify.suite_version = "classify", "classify-test"
    classify.items[0].score = 0.0
    store_score(session, classify)
    [c] = load_candidates(session, settings)
    # the router reads each mean as the low end of its interval over the 4 items measured
    assert c.scores == {"qa": routed_score(1.0, 4), "classify": routed_score(0.75, 4)}
    assert c.tokens_per_s == pytest.approx(40.0)
    assert c.prefill_tokens_per_s == pytest.approx(600.0)
    assert c.is_local and c.context_length == 2048 and c.capabilities == {"chat", "completion"}
