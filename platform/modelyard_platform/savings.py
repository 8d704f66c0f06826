"""What routing saved: the same tokens priced on the model that ran and on the priciest model.

Like with like: both sides are the router's own arithmetic (``expected_cost``) over the call's
*actual* prompt and completion tokens, from the catalogue's measured rates (per token for remote
models; for local ones measured decode and prompt speed x the machine's cost per hour).  Comparing
a measured bill with an estimated baseline would report savings that are only the gap between
measurement and estimate; with one model in the catalogue the saving must be exactly zero, and it
is.  The bill itself (``Call.cost_usd``, measured wall time) is reported beside, as ``billed_usd``.

The baseline model for a call is the most expensive adequate one: enabled, not unhealthy, and
scored for the call's kind when any model is (otherwise every enabled model counts).  A call whose
model has left the catalogue is priced at its bill on both sides.

``compute`` is pure over rows; ``savings`` loads a team's (or, for admins, every team's) calls.
The API (``GET /v1/usage/savings``) and the savings page both return what ``savings`` returns.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from modelyard_registry.routing.candidates import Candidate, MachineLimits, expected_cost
from modelyard_registry.routing.snapshot import load_candidates
from modelyard_registry.scores import Call
from modelyard_registry.settings import Settings
from pydantic import BaseModel, computed_field
from sqlmodel import Session, col, select

from .models import as_utc


class DaySavings(BaseModel):
    day: date
    calls: int
    actual_usd: float
    baseline_usd: float
    billed_usd: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def saved_usd(self) -> float:
        return self.baseline_usd - self.actual_usd


class ModelShare(BaseModel):
    model: str
    calls: int


class SavingsReport(BaseModel):
    """The public shape of ``GET /v1/usage/savings`` (and what the savings page renders)."""

    start: datetime
    end: datetime
    team_id: int | None  # None: every team (admins only)
    days: list[DaySavings]
    calls_per_model: list[ModelShare]
    baseline_model: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def calls(self) -> int:
        return sum(d.calls for d in self.days)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def actual_usd(self) -> float:
        return sum(d.actual_usd for d in self.days)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def baseline_usd(self) -> float:
        return sum(d.baseline_usd for d in self.days)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def billed_usd(self) -> float:
        return sum(d.billed_usd for d in self.days)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def saved_usd(self) -> float:
        return self.baseline_usd - self.actual_usd

    @computed_field  # type: ignore[prop-decorator]
    @property
    def saved_share(self) -> float:
        return 1 - self.actual_usd / self.baseline_usd if self.baseline_usd > 0 else 0.0


def _pool(models: list[Candidate], kind: str | None) -> list[Candidate]:
    usable = [m for m in models if m.enabled and m.health != "unhealthy"]
    scored = [m for m in usable if kind and kind in m.scores]
    return scored or usable


def compute(calls: list[Call], models: list[Candidate], limits: MachineLimits,
            start: date, end: date, *, team_id: int | None = None) -> SavingsReport:
    """Cost per day (every day from ``start`` to ``end``, empty ones too) and calls per model."""
    by_name = {m.name: m for m in models}
    per_day: dict[date, list[float]] = {}
    priciest: Counter[str] = Counter()
    for call in calls:
        stamp = as_utc(call.created_at)
        if stamp is None:
            continue
        ran = by_name.get(call.model_name)
        p, c = call.prompt_tokens, call.completion_tokens
        actual = call.cost_usd if ran is None else expected_cost(ran, p, c, limits)
        top_cost, top_name = max(
            ((expected_cost(m, p, c, limits), m.name) for m in _pool(models, call.kind)),
            default=(0.0, ""),
        )
        if top_cost > actual:
            priciest[top_name] += 1
        else:
            top_cost = actual
            priciest[call.model_name] += 1
        acc = per_day.setdefault(stamp.date(), [0, 0.0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += actual
        acc[2] += top_cost
        acc[3] += call.cost_usd
    days = []
    day = start
    while day <= end:
        n, actual_usd, baseline_usd, billed = per_day.get(day, [0, 0.0, 0.0, 0.0])
        days.append(DaySavings(day=day, calls=int(n), actual_usd=actual_usd,
                               baseline_usd=baseline_usd, billed_usd=billed))
        day += timedelta(days=1)
    shares = Counter(c.model_name for c in calls)
    return SavingsReport(
        start=datetime.combine(start, datetime.min.time()),
        end=datetime.combine(end, datetime.max.time()),
        team_id=team_id,
        days=days,
        calls_per_model=[ModelShare(model=m, calls=n)
                         for m, n in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))],
        baseline_model=priciest.most_common(1)[0][0] if priciest else None,
    )


def savings(session: Session, settings: Settings, *, team_id: int | None, start: datetime,
            end: datetime) -> SavingsReport:
    """One team's calls in the period (``team_id=None``: every team's), priced now.

    Priced against the catalogue and its measured rates as they are at the time of asking.
    """
    query = select(Call).where(col(Call.created_at) >= start, col(Call.created_at) <= end)
    if team_id is not None:
        query = query.where(Call.team_id == team_id)
    report = compute(list(session.exec(query)), load_candidates(session, settings),
                     MachineLimits.from_settings(settings), start.date(), end.date(),
                     team_id=team_id)
    return report.model_copy(update={"start": start, "end": end})
