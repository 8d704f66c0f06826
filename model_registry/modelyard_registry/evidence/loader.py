"""Every stored grade as ``Outcome`` rows: the one door the predictor and the replay go through.

Sources and their weights (how much one grade counts against another in the predictor):

| source | rows | score | weight |
|---|---|---|---|
| ``eval`` | ``eval_outcomes`` graded by a metric | the metric | 1.0 |
| ``judge`` | ``eval_outcomes`` graded by a model against a rubric | the judge's grade | 0.5 |
| ``validator`` | accepted / escalated ``calls`` with a kept request text | 1 / 0 | 0.5 |
| ``feedback`` | ``feedback`` on the accepted calls of a request or job (node) | the score | 1.0 |
| ``imported`` | ``imported_outcomes`` (catalogue models; all: ``include_external``) | log | 1.0 |

Feedback replaces the validator's verdict on the same call: a person who read the answer knows
more than a schema check.  A validator's acceptance is weaker evidence than a graded eval item,
so it counts half.  Item ids group the outcomes of different models on one request:
``<suite>:<item id>`` for evals, the request id for calls, the logged query id for imports.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..catalog import ModelEntry
from ..routing.outcomes import Outcome, OutcomeSource
from ..scores import Call
from .tables import CallInput, EvalOutcome, Feedback, ImportedItem, ImportedOutcome

WEIGHTS: dict[OutcomeSource, float] = {
    OutcomeSource.eval: 1.0,
    OutcomeSource.judge: 0.5,
    OutcomeSource.validator: 0.5,
    OutcomeSource.feedback: 1.0,
    OutcomeSource.imported: 1.0,
}
GRADED_CALLS = ("accepted", "escalated")


def load_outcomes(
    session: Session,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    include_external: bool = False,
) -> list[Outcome]:
    """All stored evidence as outcomes, optionally for one kind and/or newer than ``since``.

    ``include_external`` adds imported outcomes of models that are not in the catalogue: the
    replay can learn from them, the live router cannot route to them.  The order is stable
    (source, then insertion), so a trained artefact is reproducible from the same database.
    """
    return [
        *_eval_outcomes(session, kind, since),
        *_call_outcomes(session, kind, since),
        *_imported_outcomes(session, kind, since, include_external),
    ]


def count_outcomes_since(session: Session, since: datetime) -> int:
    """How many grades arrived after ``since`` (cheap: counts only; the worker's retrain test).

    Counts eval items, graded calls and feedback rows and imported outcomes; a feedback row that
    replaces a validator verdict counts once more, which only makes a retrain come sooner.
    """
    total = 0
    for table, created in (
        (EvalOutcome, EvalOutcome.created_at),
        (Feedback, Feedback.updated_at),
        (ImportedOutcome, ImportedOutcome.created_at),
    ):
        total += session.exec(
            select(func.count()).select_from(table).where(col(created) > since)
        ).one()
    total += session.exec(
        select(func.count())
        .select_from(Call)
        .join(CallInput, col(CallInput.request_id) == col(Call.request_id))
        .where(col(Call.created_at) > since, col(Call.outcome).in_(GRADED_CALLS),
               col(Call.validated).is_(True))
    ).one()
    return int(total)


def _eval_outcomes(session: Session, kind: str | None, since: datetime | None) -> list[Outcome]:
    query = select(EvalOutcome).order_by(col(EvalOutcome.id))
    if kind is not None:
        query = query.where(col(EvalOutcome.kind) == kind)
    if since is not None:
        query = query.where(col(EvalOutcome.created_at) >= since)
    outcomes = []
    for row in session.exec(query):
        source = OutcomeSource.judge if row.judged else OutcomeSource.eval
        outcomes.append(Outcome(
            model=row.model_name, kind=row.kind, item_id=f"{row.suite}:{row.item_id}",
            text=row.text, score=row.score, source=source, cost_usd=row.cost_usd,
            latency_s=row.latency_s, prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens, weight=WEIGHTS[source],
        ))
    return outcomes


def _call_outcomes(session: Session, kind: str | None, since: datetime | None) -> list[Outcome]:
    query = (
        select(Call, CallInput)
        .join(CallInput, col(CallInput.request_id) == col(Call.request_id))
        .where(col(Call.outcome).in_(GRADED_CALLS))
        .order_by(col(Call.id))
    )
    if kind is not None:
        query = query.where(col(CallInput.kind) == kind)
    rows = list(session.exec(query))
    feedback = _feedback_by_call(session, rows)
    outcomes = []
    for call, call_input in rows:
        note = feedback.get(call.id or 0)
        stamp = max(call.created_at, note.updated_at) if note is not None else call.created_at
        if since is not None and _aware(stamp) < _aware(since):
            continue
        if note is not None:
            score, source = note.score, OutcomeSource.feedback
        elif not call.validated:  # accepted because nothing checked it: not evidence
            continue
        else:
            score = 1.0 if call.outcome == "accepted" else 0.0
            source = OutcomeSource.validator
        outcomes.append(Outcome(
            model=call.model_name, kind=call_input.kind, item_id=call.request_id,
            text=call_input.text, score=score, source=source, cost_usd=call.cost_usd,
            latency_s=call.latency_s, prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens, weight=WEIGHTS[source],
        ))
    return outcomes


def _feedback_by_call(session: Session, rows: list[tuple[Call, CallInput]]) -> dict[int, Feedback]:
    """Which feedback row grades which accepted call (request feedback beats job feedback)."""
    if not rows:
        return {}
    by_call: dict[int, Feedback] = {}
    notes = list(session.exec(select(Feedback).order_by(col(Feedback.id))))
    by_request = {n.subject_id: n for n in notes if n.subject_type == "request"}
    by_job = {(n.subject_id, n.node): n for n in notes if n.subject_type == "job"}
    for call, _ in rows:
        if call.outcome != "accepted" or call.id is None:
            continue
        note = by_request.get(call.request_id)
        if note is None and call.job_id is not None:
            note = by_job.get((call.job_id, call.node or "")) or by_job.get((call.job_id, ""))
        if note is not None:
            by_call[call.id] = note
    return by_call


def _imported_outcomes(
    session: Session, kind: str | None, since: datetime | None, include_external: bool
) -> list[Outcome]:
    query = (
        select(ImportedOutcome, ImportedItem)
        .join(ImportedItem, col(ImportedItem.item_id) == col(ImportedOutcome.item_id))
        .order_by(col(ImportedOutcome.id))
    )
    if kind is not None:
        query = query.where(col(ImportedItem.kind) == kind)
    if since is not None:
        query = query.where(col(ImportedOutcome.created_at) >= since)
    if not include_external:
        query = query.where(col(ImportedOutcome.model).in_(select(ModelEntry.name)))
    weight = WEIGHTS[OutcomeSource.imported]
    return [
        Outcome(model=row.model, kind=item.kind, item_id=item.item_id, text=item.text,
                score=row.score, source=OutcomeSource.imported, cost_usd=row.cost_usd,
                weight=weight)
        for row, item in session.exec(query)
    ]


def _aware(stamp: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); compare them as UTC."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
