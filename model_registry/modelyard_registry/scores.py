"""Measured facts about models: quality per task kind (Score) and every model call made (Call).

Quality is measured by the eval suites, never declared; calls are recorded one row per attempt so
the cost of a request (a job, a chat call, one node of a graph) is an exact sum.

A model may hold several Scores for one kind (a quick evaluation at pull time, a full one later,
runs of an edited suite); ``current_scores`` is the one rule for which of them stands for the
model, read by the router, the listings and the predictor's priors alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from .catalog import utcnow


class Score(SQLModel, table=True):
    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("model_name", "kind", "suite_version"),)

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True, foreign_key="models.name", ondelete="CASCADE")
    kind: str = Field(index=True, description="classify | extract | summarize | qa")
    metric: str
    value: float = Field(ge=0, le=1)
    n: int
    ci_low: float
    ci_high: float
    suite_version: str
    tokens_per_s: float | None = None
    latency_s: float | None = Field(default=None, description="Mean seconds per item.")
    prompt_tokens_mean: float | None = None
    completion_tokens_mean: float | None = None
    created_at: datetime = Field(default_factory=utcnow)


_PARTIAL = re.compile(r":(?:sample|first)\d+$")  # ":first<N>": rows of older releases


def suite_measured(suite_version: str) -> str:
    """The suite a Score's version measured, partial runs included.

    ``classify-1a2b:sample10`` (a quick evaluation on 10 of its items) measured the suite
    ``classify-1a2b`` just as a full run of it did; an edited file has another hash, so
    another suite.
    """
    return _PARTIAL.sub("", suite_version)


def current_scores(rows: Iterable[Score]) -> dict[tuple[str, str], Score]:
    """(model, kind) -> the Score that stands for the model's quality on the kind.

    The newest *suite* wins: of the suites measured (``suite_measured``), the one with the most
    recent row, so a run of an edited or newer suite supersedes results on the old one.  Within
    that suite the row covering the most items wins and the newest breaks ties: a 10-item quick
    evaluation run after a 150-item full one must not replace its evidence (the newest row used
    to win, whatever it covered).
    """
    def age(row: Score) -> tuple[datetime, int]:
        return row.created_at, row.id or 0

    groups: dict[tuple[str, str], dict[str, list[Score]]] = {}
    for row in rows:
        groups.setdefault((row.model_name, row.kind), {}).setdefault(
            suite_measured(row.suite_version), []).append(row)
    chosen: dict[tuple[str, str], Score] = {}
    for key, suites in groups.items():
        newest_suite = max(suites.values(), key=lambda members: max(map(age, members)))
        chosen[key] = max(newest_suite, key=lambda row: (row.n, age(row)))
    return chosen


class Call(SQLModel, table=True):
    __tablename__ = "calls"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(index=True, description="Groups the attempts of one logical call.")
    job_id: str | None = Field(default=None, index=True)
    team_id: int | None = Field(default=None, index=True)
    node: str | None = None
    kind: str | None = None
    attempt: int = 1
    model_name: str = Field(index=True)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    ttft_s: float | None = None
    cost_usd: float = 0.0
    outcome: str = Field(description="accepted | escalated | error")
    reason: str = ""
    validated: bool = Field(default=False, description="A validator judged the answer, so the "
                            "outcome is routing evidence (unvalidated acceptances are not).")
    completion: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON),
        description="What an accepted attempt returned (text, finish reason, logprobs), so a "
        "resumed job node reuses it instead of paying for the call again.",
    )
    created_at: datetime = Field(default_factory=utcnow, index=True)
