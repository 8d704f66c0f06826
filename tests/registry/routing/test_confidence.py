"""A score measured on a handful of items must not beat a better-measured one by luck.

``routed_score`` (what the router judges adequacy on) and the spread sample behind quick
evaluations (``Suite.sample``): both pure, so tested without a model.
"""

from __future__ import annotations

import pytest
from modelyard_registry.catalog import Backend, ModelEntry
from modelyard_registry.evals.metrics import wilson_interval
from modelyard_registry.evals.suites import load_suite, sample_items
from modelyard_registry.routing.candidates import MachineLimits
from modelyard_registry.routing.confidence import routed_score
from modelyard_registry.routing.decide import decide
from modelyard_registry.routing.snapshot import candidate_from
from modelyard_registry.scores import Score
from modelyard_registry.taskspec import TaskSpec

LIMITS = MachineLimits(ram_budget_bytes=4096 * 2**20, n_ctx=4096, machine_cost_per_hour=0.10)


@pytest.mark.parametrize(("value", "n"), [(1.0, 3), (0.67, 3), (0.85, 13), (0.4, 10),
                                          (0.8, 150), (0.0, 5), (0.5, 1)])
def test_routed_score_is_the_low_end_of_the_wilson_interval(value: float, n: int) -> None:
    low, _ = wilson_interval(value * n, n)
    assert routed_score(value, n) == pytest.approx(low)
    assert 0.0 <= routed_score(value, n) <= value


def test_routed_score_grows_with_evidence_and_tends_to_the_mean() -> None:
    assert routed_score(1.0, 3) == pytest.approx(0.439, abs=1e-3)  # 3/3 is weak evidence
    by_n = [routed_score(0.8, n) for n in (3, 10, 30, 150, 10_000)]
    assert by_n == sorted(by_n) and by_n[-1] == pytest.approx(0.8, abs=0.01)
    by_value = [routed_score(v, 10) for v in (0.2, 0.5, 0.8, 1.0)]
    assert by_value == sorted(by_value)


def test_routed_score_without_items_or_out_of_range() -> None:
    assert routed_score(0.9, 0) == 0.0
    assert routed_score(1.3, 10) == routed_score(1.0, 10)
    assert routed_score(-0.1, 10) == 0.0


def _entry(name: str) -> ModelEntry:
    return ModelEntry(name=name, backend=Backend.llama_cpp, capabilities=["chat", "json_schema"],
                      context_length=8192, ram_bytes=2**28)


def _score(name: str, value: float, n: int, tokens_per_s: float) -> Score:
    return Score(model_name=name, kind="classify", metric="accuracy", value=value, n=n,
                 ci_low=0.0, ci_high=1.0, suite_version="classify-x:sample", latency_s=0.5,
                 tokens_per_s=tokens_per_s, prompt_tokens_mean=100, completion_tokens_mean=6)


def test_a_lucky_three_item_score_loses_to_a_well_measured_one() -> None:
    """The triage case: the cheap model's 3/3 no longer clears a bar that its 13-item rival's
    0.85 does, so the cheapest *adequate* model is the better-measured one."""
    lucky = candidate_from(_entry("smol"), [_score("smol", 1.0, 3, 120.0)])
    measured = candidate_from(_entry("qwen"), [_score("qwen", 0.85, 13, 40.0)])
    assert lucky.scores["classify"] < measured.scores["classify"]
    spec = TaskSpec.build(kind="classify", min_quality=0.5, max_output_tokens=40)
    decision = decide(spec, 100, [lucky, measured], LIMITS)
    assert decision.chosen is not None and decision.chosen.name == "qwen"
    by = {v.name: v for v in decision.candidates}
    assert by["smol"].status == "rejected" and "quality 0.44 < 0.50" in by["smol"].reason
    # measured on a full suite, the cheap model's score stands nearly as measured
    full = candidate_from(_entry("smol"), [_score("smol", 0.9, 150, 120.0)])
    assert full.scores["classify"] == pytest.approx(0.84, abs=0.01)
    decision = decide(spec, 100, [full, measured], LIMITS)
    assert decision.chosen is not None and decision.chosen.name == "smol"


def test_the_quick_sample_is_spread_fixed_nested_and_in_file_order() -> None:
    suite = load_suite("classify")
    ten = sample_items(suite.items, 10)
    assert ten == sample_items(suite.items, 10)  # the same on every run
    ids = [item["id"] for item in suite.items]
    positions = [ids.index(item["id"]) for item in ten]
    assert positions == sorted(positions) and positions != list(range(10))
    assert max(positions) >= len(ids) // 2  # reaches past the hand-written head
    assert set(map(id, sample_items(suite.items, 3))) <= set(map(id, ten))  # a larger limit
    # keeps the smaller one's items; the sample is not loaded with first-label answers
    assert sum(item["gold"] == item["labels"][0] for item in ten) <= 5
    assert suite.sample(10).items == ten and suite.sample(10).version.endswith(":sample10")
    assert suite.sample(None) is suite and suite.sample(len(ids)) is suite
