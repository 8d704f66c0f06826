"""The platform's tables: teams, their API keys, jobs and job events.

The ``jobs`` row is the source of truth for a job: the Celery message carries only its id, and a
worker claims the row (with a lease it keeps renewing) before running it, so a redelivered or
duplicated message can never run a job twice at the same time or write its result twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from modelyard_registry.catalog import utcnow
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every stored datetime is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class Team(SQLModel, table=True):
    __tablename__ = "teams"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=63)
    budget_usd: float | None = Field(
        default=None, ge=0, description="Monthly (UTC calendar month) spending cap; none: no cap."
    )
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    """A key is shown once; only its SHA-256 is stored.

    Keys are 256-bit random, so a fast hash is enough: there is nothing to brute-force.
    """

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="teams.id", index=True)
    prefix: str = Field(description="First characters, to tell keys apart in listings.")
    key_hash: str = Field(index=True, unique=True, max_length=64)
    admin: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("team_id", "idempotency_key"),)

    id: str = Field(primary_key=True, max_length=32)
    team_id: int = Field(foreign_key="teams.id", index=True)
    product: str = Field(index=True)
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    input: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    progress: float = 0.0
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    cost_usd: float = 0.0
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str | None = Field(default=None, max_length=64)
    attempts: int = Field(default=0, description="Times a worker claimed the job.")
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    enqueued_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobEvent(SQLModel, table=True):
    """Progress and node events, numbered per job: the SSE stream replays them by number."""

    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="jobs.id", index=True, ondelete="CASCADE")
    seq: int
    type: str
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
