"""Per-item eval outcomes: what each item of a suite scored, kept beside the aggregate Score."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, delete

from .tables import EvalOutcome


def replace_eval_outcomes(
    session: Session, *, model: str, suite: str, rows: Sequence[EvalOutcome]
) -> None:
    """Store ``rows`` as the outcomes of ``model`` on ``suite``, dropping the previous run's.

    Like Scores, a re-run replaces: the evidence is the model's latest answer to each item.
    The caller commits (the runner commits it with the Score, so they never disagree).
    """
    session.exec(  # type: ignore[call-overload]
        delete(EvalOutcome).where(col(EvalOutcome.model_name) == model,
                                  col(EvalOutcome.suite) == suite)
    )
    session.add_all(rows)
