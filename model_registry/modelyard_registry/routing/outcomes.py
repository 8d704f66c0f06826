"""The unit of routing evidence: one model's graded answer to one request.

Every source of evidence (per-item eval results, validator verdicts and feedback on production
calls, imported public outcome logs) is reduced to ``Outcome`` rows, so the predictor and the replay
never care where a grade came from, only how much to trust it (``weight``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class OutcomeSource(StrEnum):
    """Where a grade came from; weaker sources carry less weight in the predictor."""

    eval = "eval"  # a built-in or custom eval item, graded by its metric
    judge = "judge"  # an eval item graded by a model against a rubric (weaker)
    validator = "validator"  # a production call accepted/rejected by the cascade's validator
    feedback = "feedback"  # a person's or a program's score on a production result
    imported = "imported"  # a public outcome log (RouterBench format)


@dataclass(frozen=True)
class Outcome:
    """``model`` answered ``text`` (a request of ``kind``) with quality ``score`` in [0, 1].

    ``item_id`` groups the outcomes of different models on the same request (replay and the
    oracle need it); ``cost_usd`` is what the answer cost when it is known.
    """

    model: str
    kind: str
    item_id: str
    text: str
    score: float
    source: OutcomeSource = OutcomeSource.eval
    cost_usd: float | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")


@dataclass(frozen=True)
class Neighbour:
    """One evaluated item close to the request, shown by `yard route explain` and the API."""

    item_id: str
    text: str
    similarity: float
    score: float


@dataclass(frozen=True)
class Prediction:
    """A model's predicted probability of an adequate answer to one request.

    ``evidence`` is the effective number of outcomes behind ``p`` (0 when it is only the per-kind
    prior); ``neighbours`` are the nearest items that support it, best first.
    """

    model: str
    p: float
    evidence: float
    prior: float | None = None
    neighbours: tuple[Neighbour, ...] = field(default=())
