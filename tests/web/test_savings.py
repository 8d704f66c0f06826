"""Savings arithmetic and chart geometry: pure functions over hand-built rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from modelyard_registry.router import Candidate, MachineLimits, expected_cost
from modelyard_registry.scores import Call
from modelyard_web.chart import cost_chart, nice_step
from modelyard_web.render import money
from modelyard_web.savings import compute

LIMITS = MachineLimits(ram_budget_bytes=2**30, n_ctx=4096, machine_cost_per_hour=3.6,
                       unmeasured_tokens_per_s=10.0, prefill_factor=8.0)


def model(name: str, *, local: bool = False, price_in: float = 0.0, price_out: float = 0.0,
          tps: float | None = None, enabled: bool = True, health: str = "healthy") -> Candidate:
    return Candidate(
        name=name, backend="llama_cpp" if local else "openai_compatible",
        capabilities=frozenset({"chat"}), context_length=4096, price_in=price_in,
        price_out=price_out, tokens_per_s=tps, health=health, enabled=enabled, ram_bytes=None,
    )


def call(model_name: str, day: int, cost: float, prompt: int = 1000, completion: int = 100
         ) -> Call:
    return Call(request_id="r", model_name=model_name, prompt_tokens=prompt,
                completion_tokens=completion, cost_usd=cost, outcome="accepted",
                created_at=datetime(2025, 3, day, 12, tzinfo=UTC))


def test_remote_is_priced_per_token_and_local_per_second() -> None:
    big = model("big", price_in=2.0, price_out=10.0)
    assert expected_cost(big, 1_000_000, 0, LIMITS) == pytest.approx(2.0)
    assert expected_cost(big, 1000, 100, LIMITS) == pytest.approx(0.002 + 0.001)
    # 100 tokens at 50 tok/s = 2 s, prompt 800 at 400 tok/s = 2 s: 4 s at $3.6/h = $0.004
    small = model("small", local=True, tps=50.0)
    assert expected_cost(small, 800, 100, LIMITS) == pytest.approx(0.004)
    # unmeasured: the deliberately slow default speed
    assert expected_cost(model("new", local=True), 0, 10, LIMITS) == pytest.approx(0.001)


def test_baseline_uses_the_priciest_adequate_model_per_call() -> None:
    # small: 1000 / 4000 + 100 / 500 = 0.45 s = $0.00045 per call; big: $0.003 per call
    models = [model("small", local=True, tps=500.0), model("big", price_in=2.0, price_out=10.0),
              model("off", price_in=100.0, enabled=False),
              model("sick", price_in=100.0, health="unhealthy")]
    calls = [call("small", 1, 0.0004), call("small", 1, 0.0004), call("big", 3, 0.003)]
    result = compute(calls, models, LIMITS, date(2025, 3, 1), date(2025, 3, 3))
    assert [d.day.day for d in result.days] == [1, 2, 3]
    first, empty, third = result.days
    assert first.calls == 2 and first.actual_usd == pytest.approx(0.0008)
    assert first.baseline_usd == pytest.approx(2 * 0.003)
    assert empty.calls == 0 and empty.baseline_usd == 0
    assert third.saved_usd == pytest.approx(0.0)  # already on the priciest model
    assert result.baseline_model == "big"
    assert result.calls_per_model == [("small", 2), ("big", 1)]
    assert result.saved_share == pytest.approx(1 - 0.0038 / 0.009)


def test_baseline_never_undercuts_what_was_spent() -> None:
    result = compute([call("gone", 1, 0.5)], [model("cheap", price_in=0.01)], LIMITS,
                     date(2025, 3, 1), date(2025, 3, 1))
    assert result.days[0].baseline_usd == pytest.approx(0.5)
    assert compute([], [], LIMITS, date(2025, 3, 1), date(2025, 3, 1)).saved_share == 0.0


def test_nice_steps() -> None:
    assert nice_step(0) == 1.0
    assert nice_step(1.0) == pytest.approx(0.5)
    assert nice_step(0.0009) == pytest.approx(0.0005)
    assert nice_step(37) == pytest.approx(10)


def test_chart_bars_stay_inside_the_plot() -> None:
    models = [model("big", price_in=2.0, price_out=10.0)]
    days = compute([call("big", d, 0.001 * d) for d in range(1, 31)], models, LIMITS,
                   date(2025, 3, 1), date(2025, 3, 30)).days
    chart = cost_chart(days, money)
    assert len(chart.bars) == 60 and len(chart.x_ticks) <= 10
    for bar in chart.bars:
        assert chart.plot_left <= bar.x <= chart.plot_right
        assert chart.plot_top - 0.01 <= bar.y <= chart.plot_bottom + 0.01
        assert bar.height >= 0
    assert chart.y_ticks[0].label == "$0"
    assert any("priciest adequate model" in b.title for b in chart.bars)
