"""What routing saved: each call's actual cost against the same tokens on the priciest model.

The baseline prices every call as if it had gone to the most expensive adequate model ("always
use the big one"): enabled, not unhealthy, priced with the router's own arithmetic
(``router.expected_cost``: per token for remote models; wall time on this machine for local
ones, from measured tokens/s).  Pure functions over plain rows, plus one loader.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from modelyard_platform.models import as_utc
from modelyard_registry.router import Candidate, MachineLimits, expected_cost, load_candidates
from modelyard_registry.scores import Call
from modelyard_registry.settings import Settings
from sqlmodel import Session, col, select


@dataclass(frozen=True)
class DayCost:
    day: date
    calls: int
    actual_usd: float
    baseline_usd: float

    @property
    def saved_usd(self) -> float:
        return self.baseline_usd - self.actual_usd


@dataclass(frozen=True)
class Savings:
    days: list[DayCost]
    calls_per_model: list[tuple[str, int]]
    baseline_model: str | None

    @property
    def actual_usd(self) -> float:
        return sum(d.actual_usd for d in self.days)

    @property
    def baseline_usd(self) -> float:
        return sum(d.baseline_usd for d in self.days)

    @property
    def calls(self) -> int:
        return sum(d.calls for d in self.days)

    @property
    def saved_share(self) -> float:
        return 1 - self.actual_usd / self.baseline_usd if self.baseline_usd > 0 else 0.0


def adequate(models: list[Candidate]) -> list[Candidate]:
    return [m for m in models if m.enabled and m.health != "unhealthy"]


def compute(calls: list[Call], models: list[Candidate], limits: MachineLimits,
            start: date, end: date) -> Savings:
    """Cost per day (every day from ``start`` to ``end``, empty ones too) and calls per model."""
    pool = adequate(models)
    per_day: dict[date, list[float]] = {}
    priciest: Counter[str] = Counter()
    for call in calls:
        stamp = as_utc(call.created_at)
        if stamp is None:
            continue
        options = [(expected_cost(m, call.prompt_tokens, call.completion_tokens, limits), m.name)
                   for m in pool]
        top_cost, top_name = max(options, default=(0.0, ""))
        if top_name:
            priciest[top_name] += 1
        acc = per_day.setdefault(stamp.date(), [0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += call.cost_usd
        acc[2] += max(call.cost_usd, top_cost)
    days = []
    day = start
    while day <= end:
        n, actual, baseline = per_day.get(day, [0, 0.0, 0.0])
        days.append(DayCost(day=day, calls=int(n), actual_usd=actual, baseline_usd=baseline))
        day += timedelta(days=1)
    shares = Counter(c.model_name for c in calls)
    return Savings(
        days=days,
        calls_per_model=sorted(shares.items(), key=lambda kv: (-kv[1], kv[0])),
        baseline_model=priciest.most_common(1)[0][0] if priciest else None,
    )


def load(session: Session, settings: Settings, start: datetime, end: datetime) -> Savings:
    """Every team's calls in the period, priced against the catalogue as it is now."""
    calls = list(session.exec(
        select(Call).where(col(Call.created_at) >= start, col(Call.created_at) <= end)
    ))
    return compute(calls, load_candidates(session, settings), MachineLimits.from_settings(settings),
                   start.date(), end.date())
