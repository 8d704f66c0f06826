"""Measured facts about models: quality per task kind (Score) and every model call made (Call).

Quality is measured by the eval suites, never declared; calls are recorded one row per attempt so
the cost of a request (a job, a chat call, one node of a graph) is an exact sum.
"""

from __future__ import annotations

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
