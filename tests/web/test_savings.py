"""Savings chart geometry: pure functions over hand-built rows (the arithmetic is tested with
the library, tests/service/test_savings.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from modelyard_platform.savings import compute
from modelyard_registry.routing.candidates import Candidate, MachineLimits
from modelyard_registry.scores import Call
from modelyard_web.chart import cost_chart, nice_step
from modelyard_web.render import money

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
