"""Geometry of the savings chart (grouped bars per day), drawn as inline SVG by its template."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from modelyard_platform.savings import DaySavings

LEFT, RIGHT, TOP, BOTTOM = 64.0, 12.0, 12.0, 28.0


@dataclass(frozen=True)
class Bar:
    series: str
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class BarChart:
    width: float
    height: float
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    plot_left: float = LEFT
    plot_top: float = TOP
    plot_bottom: float = 0.0
    plot_right: float = 0.0


def nice_step(top: float, ticks: int = 4) -> float:
    """A 1/2/5 x 10^n step so that ``ticks`` steps cover ``top``."""
    if top <= 0:
        return 1.0
    raw = top / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def cost_chart(days: list[DaySavings], fmt: Callable[[float], str], width: float = 720,
               height: float = 260) -> BarChart:
    """Two bars per day: what was spent, and what the priciest adequate model would have cost."""
    bottom, right = height - BOTTOM, width - RIGHT
    top_value = max((d.baseline_usd for d in days), default=0.0)
    step = nice_step(top_value)
    y_max = step * max(1, math.ceil(top_value / step)) if top_value > 0 else step * 4

    def y_of(value: float) -> float:
        return bottom - (bottom - TOP) * value / y_max

    slot = (right - LEFT) / max(len(days), 1)
    bar_w = max(1.0, slot * 0.38)
    bars: list[Bar] = []
    x_ticks: list[Tick] = []
    label_every = max(1, math.ceil(len(days) / 10))
    for i, d in enumerate(days):
        x0 = LEFT + i * slot + (slot - 2 * bar_w) / 2
        when = d.day.isoformat()
        for j, (series, value) in enumerate((("baseline", d.baseline_usd),
                                             ("actual", d.actual_usd))):
            y = y_of(value)
            name = "priciest adequate model" if series == "baseline" else "actually spent"
            bars.append(Bar(series, round(x0 + j * bar_w, 2), round(y, 2), round(bar_w, 2),
                            round(bottom - y, 2), f"{when}: {name} {fmt(value)}"))
        if i % label_every == 0:
            x_ticks.append(Tick(round(LEFT + (i + 0.5) * slot, 2), d.day.strftime("%b %d")))
    y_ticks = [Tick(round(y_of(v), 2), fmt(v))
               for v in (step * k for k in range(round(y_max / step) + 1))]
    return BarChart(width=width, height=height, bars=bars, y_ticks=y_ticks, x_ticks=x_ticks,
                    plot_bottom=bottom, plot_right=right)
