"""The platform's tables: teams, people and their sessions, API keys, jobs and job events.

The ``jobs`` row is the source of truth for a job: the Celery message carries only its id, and a
worker claims the row (with a lease it keeps renewing) before running it, so a redelivered or
duplicated message can never run a job twice at the same time or write its result twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from modelyard_registry.catalog import utcnow
from sqlalchemy import JSON, Column, Index, UniqueConstraint
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


class BudgetReservation(SQLModel, table=True):
    """A model call in flight, holding its maximum cost against its team's budget.

    Written at admission, deleted in the transaction of the call's last usage row (``budget``).
    A process that dies mid-call leaves its row behind: it stops counting at ``expires_at``, and
    a job call's leftover is billed when the job's next worker makes the same call.
    """

    __tablename__ = "budget_reservations"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="teams.id", index=True, ondelete="CASCADE")
    request_id: str = Field(max_length=255)
    job_id: str | None = Field(default=None, max_length=32)
    node: str | None = Field(default=None, max_length=255)
    model_name: str = Field(default="", max_length=255,
                            description="The model the call tries first.")
    amount_usd: float = Field(ge=0)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


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
    user_id: int | None = Field(
        default=None, foreign_key="users.id", index=True,
        description="The person who made the key on their account page (none: made by CLI).",
    )
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class Role(StrEnum):
    member = "member"
    admin = "admin"


class User(SQLModel, table=True):
    """A person who signs in to the web UI; the password is an argon2id hash, or none yet."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=254, description="Lowercased.")
    password_hash: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    disabled_at: datetime | None = None


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "team_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    team_id: int = Field(foreign_key="teams.id", index=True)
    role: Role = Role.member
    created_at: datetime = Field(default_factory=utcnow)


class WebSession(SQLModel, table=True):
    """A signed-in browser, kept server-side so signing out or a password change ends it.

    The cookie carries the random id, signed; only its SHA-256 is stored.  A session belongs to a
    person (``user_id``, acting for ``team_id``) or, where the setting allows, to an API key.
    """

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True,
                                ondelete="CASCADE")
    key_id: int | None = Field(default=None, foreign_key="api_keys.id")
    team_id: int | None = Field(default=None, foreign_key="teams.id")
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class LinkKind(StrEnum):
    invite = "invite"
    reset = "reset"


class AccountLink(SQLModel, table=True):
    """A one-time link (invitation or password reset); only its SHA-256 is stored."""

    __tablename__ = "account_links"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    kind: LinkKind
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("team_id", "idempotency_key"),
        # claim and backlog checks by index seeks (migration 0012, ``jobs.fair``); their
        # leading columns also serve every lookup by status or by team
        Index("ix_jobs_fresh", "status", "attempts", "team_id", "created_at", "id"),
        Index("ix_jobs_team_status", "team_id", "status"),
        Index("ix_jobs_team_started", "team_id", "started_at"),
    )

    id: str = Field(primary_key=True, max_length=32)
    team_id: int = Field(foreign_key="teams.id")  # indexed by ix_jobs_team_status's lead
    product: str = Field(index=True)
    status: JobStatus = Field(default=JobStatus.queued)  # indexed by ix_jobs_fresh's lead
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
