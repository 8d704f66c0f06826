"""Feedback on production results: a score in [0, 1] on a request (a chat call) or a job's node.

The API (``POST /v1/feedback``), the job page's good/bad buttons and ``yard feedback list`` are
skins over ``record_feedback`` and ``list_feedback``.

Scoping: a subject is visible to a team only through the model calls it recorded, so another
team's request or job is indistinguishable from an unknown one (the same ``NotFound``).
Idempotency: one row per (subject, node).  A repeat *updates* that row's score and comment and
returns it with ``created=False`` (a person changing their mind is normal, not a clash).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ..catalog import utcnow
from ..errors import InvalidInput, NotFound
from ..scores import Call
from .tables import Feedback


class FeedbackIn(BaseModel):
    """The body of ``POST /v1/feedback``: exactly one of ``request_id`` and ``job_id``."""

    # The document says what ``_subject`` enforces: exactly one of the two ids, as a string.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": [key], "properties": {key: {"type": "string"}}}
        for key in ("request_id", "job_id")]})

    request_id: str | None = Field(default=None, min_length=1, max_length=255)
    job_id: str | None = Field(default=None, min_length=1, max_length=255)
    node: str | None = Field(default=None, min_length=1, max_length=255)
    score: float = Field(ge=0.0, le=1.0, description="1 = good, 0 = bad.")
    comment: str | None = Field(default=None, max_length=2000)


class FeedbackPublic(BaseModel):
    """One feedback row as the API and ``yard feedback list --json`` show it."""

    id: int
    team_id: int | None
    request_id: str | None
    job_id: str | None
    node: str | None
    score: float
    comment: str | None
    models: list[str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Recorded:
    feedback: FeedbackPublic
    created: bool


def record_feedback(session: Session, *, team_id: int | None, feedback_in: FeedbackIn) -> Recorded:
    """Store (or update) feedback on a subject the team's calls touched.

    ``team_id=None`` skips scoping (an operator on the command line).  Raises ``InvalidInput``
    when neither or both subjects are given, ``NotFound`` for an unknown (or another team's)
    request, job or node.
    """
    subject_type, subject_id = _subject(feedback_in)
    node = feedback_in.node or ""
    calls = _subject_calls(session, team_id, subject_type, subject_id, node)
    row = _find(session, subject_type, subject_id, node)
    created = row is None
    if row is None:
        row = Feedback(team_id=calls[0].team_id, subject_type=subject_type,
                       subject_id=subject_id, node=node, score=feedback_in.score,
                       comment=feedback_in.comment)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # a concurrent first post won: this one becomes the update
            session.rollback()
            row = _find(session, subject_type, subject_id, node)
            assert row is not None
            created = False
    if not created:
        row.score, row.comment, row.updated_at = feedback_in.score, feedback_in.comment, utcnow()
        session.add(row)
        session.commit()
    session.refresh(row)
    return Recorded(_public(row, calls), created)


def list_feedback(
    session: Session, *, team_id: int | None = None, since: datetime | None = None,
    limit: int = 100,
) -> list[FeedbackPublic]:
    """Newest first; ``team_id=None`` lists every team's."""
    if limit < 1:
        raise InvalidInput("limit must be >= 1", field="limit")
    query = select(Feedback).order_by(col(Feedback.updated_at).desc(), col(Feedback.id).desc())
    if team_id is not None:
        query = query.where(col(Feedback.team_id) == team_id)
    if since is not None:
        query = query.where(col(Feedback.updated_at) >= since)
    rows = list(session.exec(query.limit(limit)))
    return [
        _public(row, _subject_calls(session, None, row.subject_type, row.subject_id, row.node,
                                    missing_ok=True))
        for row in rows
    ]


def feedback_for_job(session: Session, job_id: str) -> dict[str, float]:
    """The score given per node of a job (``""`` for the whole job), for the job page."""
    rows = session.exec(select(Feedback).where(col(Feedback.subject_type) == "job",
                                               col(Feedback.subject_id) == job_id))
    return {row.node: row.score for row in rows}


def _subject(feedback_in: FeedbackIn) -> tuple[str, str]:
    if feedback_in.request_id and feedback_in.job_id:
        raise InvalidInput("give request_id or job_id, not both", field="job_id")
    if feedback_in.request_id:
        return "request", feedback_in.request_id
    if feedback_in.job_id:
        return "job", feedback_in.job_id
    raise InvalidInput("give request_id (a chat completion's id) or job_id", field="request_id")


def _subject_calls(
    session: Session, team_id: int | None, subject_type: str, subject_id: str, node: str,
    *, missing_ok: bool = False,
) -> list[Call]:
    column = Call.request_id if subject_type == "request" else Call.job_id
    query = select(Call).where(col(column) == subject_id).order_by(col(Call.id))
    if team_id is not None:
        query = query.where(col(Call.team_id) == team_id)
    calls = list(session.exec(query))
    if not calls and not missing_ok:
        raise NotFound(f"unknown {subject_type} {subject_id!r}", field=f"{subject_type}_id")
    if node:
        calls = [c for c in calls if c.node == node]
        if not calls and not missing_ok:
            raise NotFound(f"{subject_type} {subject_id!r} has no node {node!r}", field="node")
    return calls


def _find(session: Session, subject_type: str, subject_id: str, node: str) -> Feedback | None:
    return session.exec(select(Feedback).where(
        col(Feedback.subject_type) == subject_type, col(Feedback.subject_id) == subject_id,
        col(Feedback.node) == node,
    )).first()


def _public(row: Feedback, calls: list[Call]) -> FeedbackPublic:
    assert row.id is not None
    models = sorted({c.model_name for c in calls if c.outcome == "accepted"})
    return FeedbackPublic(
        id=row.id, team_id=row.team_id,
        request_id=row.subject_id if row.subject_type == "request" else None,
        job_id=row.subject_id if row.subject_type == "job" else None,
        node=row.node or None, score=row.score, comment=row.comment, models=models,
        created_at=row.created_at, updated_at=row.updated_at,
    )
