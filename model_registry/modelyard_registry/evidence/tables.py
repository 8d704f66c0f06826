"""The evidence tables: every graded answer the predictor and the replay may learn from.

One table per way a grade arrives, because each arrives differently: eval items are replaced per
(model, suite) on every run, production calls are graded by the cascade's validator as they
happen and later by feedback, imported logs replace per item id.  ``load_outcomes`` reduces them
all to ``Outcome`` rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..catalog import utcnow

MAX_TEXT_CHARS = 4000
"""Request texts are kept to this many characters: enough to embed, bounded in storage."""


_CUT = "\n…\n"


def bounded(text: str) -> str:
    """At most ``MAX_TEXT_CHARS``: the head and, mostly, the tail of a longer text.

    The tail is where a request's question usually sits (after few-shot examples or a document),
    so it keeps three quarters of the room.
    """
    if len(text) <= MAX_TEXT_CHARS:
        return text
    head = MAX_TEXT_CHARS // 4
    return text[:head] + _CUT + text[len(text) - (MAX_TEXT_CHARS - head - len(_CUT)):]


class EvalOutcome(SQLModel, table=True):
    """One eval item answered by one model, graded by the suite's metric (or a judge)."""

    __tablename__ = "eval_outcomes"
    __table_args__ = (UniqueConstraint("model_name", "suite", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True, foreign_key="models.name", ondelete="CASCADE")
    kind: str = Field(index=True)
    suite: str = Field(index=True, description="Built-in suites are named by their kind.")
    suite_version: str
    item_id: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    score: float = Field(ge=0, le=1)
    judged: bool = Field(default=False, description="Graded by a model against a rubric.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, index=True)


class CallInput(SQLModel, table=True):
    """The request text of one logical call, kept so its ``Call`` verdicts can teach routing.

    Written once per request id, with the first recorded attempt; the text is bounded
    (``MAX_TEXT_CHARS``) and holds the user's content, not the product's system prompt.
    """

    __tablename__ = "call_inputs"

    request_id: str = Field(primary_key=True, max_length=255)
    team_id: int | None = Field(default=None, index=True)
    job_id: str | None = Field(default=None, index=True)
    node: str | None = None
    kind: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Feedback(SQLModel, table=True):
    """A person's or a program's score on a production result: a request, or a job's node.

    One row per (subject, node): a repeat updates it (see ``record_feedback``).
    """

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("subject_type", "subject_id", "node"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int | None = Field(default=None, index=True)
    subject_type: str = Field(description="request | job")
    subject_id: str = Field(max_length=255)
    node: str = Field(default="", description="'' when the feedback is on the whole subject.")
    score: float = Field(ge=0, le=1)
    comment: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class ImportedItem(SQLModel, table=True):
    """One request of an imported public outcome log (its text is stored once, not per model)."""

    __tablename__ = "imported_items"

    item_id: str = Field(primary_key=True, max_length=255)
    kind: str = Field(index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(default="", description="The file it came from.")
    created_at: datetime = Field(default_factory=utcnow)


class ImportedOutcome(SQLModel, table=True):
    """One model's graded answer to an imported item; the model need not be in the catalogue."""

    __tablename__ = "imported_outcomes"
    __table_args__ = (UniqueConstraint("item_id", "model"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(
        index=True, foreign_key="imported_items.item_id", ondelete="CASCADE", max_length=255
    )
    model: str = Field(index=True)
    score: float = Field(ge=0, le=1)
    cost_usd: float | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)
