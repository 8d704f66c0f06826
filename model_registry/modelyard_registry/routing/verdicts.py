"""What a decision says: every candidate's verdict, the pick, and the reason for both.

Rejected candidates are kept as plain tuples (``Row``) until someone reads ``candidates``, and
their reasons are rendered from templates only then: building and formatting a thousand verdicts
costs more than deciding, and most decisions are never explained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ..errors import NoAdequateModel
from .outcomes import Prediction

Status = Literal["chosen", "adequate", "rejected"]
Basis = Literal["prediction", "score"]
Failure = tuple[str, tuple[Any, ...]]  # (str.format template, its arguments)
# A rejected candidate as decide leaves it:
# name, backend, quality judged, cost, latency, fits, failures, per-kind score.
Row = tuple[str, str, float | None, float, float | None, bool, list[Failure], float | None]
NOT_PINNED = "not the pinned model"
PINNED_OUT: list[Failure] = [(NOT_PINNED, ())]


class CandidateVerdict:
    """One candidate as the router saw it: quality, expected cost and latency, status, reason.

    ``quality`` is what adequacy was judged on: the predicted probability of an adequate answer
    when the decision used predictions, else the measured per-kind score.  ``score`` is always
    the per-kind score and ``prediction`` the predictor's estimate (with its evidence), so an
    explanation can show both.
    """

    __slots__ = ("_failures", "_reason", "backend", "expected_cost_usd", "expected_latency_s",
                 "fits", "name", "prediction", "quality", "score", "status")

    def __init__(
        self,
        name: str,
        backend: str,
        quality: float | None,
        expected_cost_usd: float,
        expected_latency_s: float | None,
        status: Status,
        reason: str | None = None,
        fits: bool = True,
        failures: list[Failure] | None = None,
        score: float | None = None,
        prediction: Prediction | None = None,
    ) -> None:
        self.name = name
        self.backend = backend
        self.quality = quality
        self.expected_cost_usd = expected_cost_usd
        self.expected_latency_s = expected_latency_s
        self.status: Status = status
        self.fits = fits  # passes every hard limit (all but the quality bar)
        self.score = score
        self.prediction = prediction
        self._reason = reason
        self._failures = failures or []

    @property
    def reason(self) -> str:
        """Why it was chosen, is adequate, or was rejected (every unmet requirement)."""
        if self._reason is None:
            self._reason = "; ".join(t.format(*args) for t, args in self._failures)
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._reason = value

    @property
    def failures(self) -> list[Failure]:
        """The unmet requirements as templates (rendered lazily into ``reason``)."""
        return self._failures

    @failures.setter
    def failures(self, value: list[Failure]) -> None:
        self._failures = value
        self._reason = None

    @property
    def unmet(self) -> int:
        """How many requirements it fails (0 for adequate candidates)."""
        return len(self._failures) if self.status == "rejected" else 0

    def __repr__(self) -> str:
        return (f"CandidateVerdict({self.name!r}, {self.status}, quality={self.quality}, "
                f"expected_cost_usd={self.expected_cost_usd:.3g}, reason={self.reason!r})")

    def to_dict(self) -> dict[str, Any]:
        p = self.prediction
        return {
            "name": self.name,
            "backend": self.backend,
            "quality": self.quality,
            "score": self.score,
            "predicted_quality": None if p is None else p.p,
            "evidence": None if p is None else p.evidence,
            "neighbours": [] if p is None else [
                {"item_id": n.item_id, "text": n.text, "similarity": n.similarity,
                 "score": n.score} for n in p.neighbours
            ],
            "expected_cost_usd": self.expected_cost_usd,
            "expected_latency_s": self.expected_latency_s,
            "status": self.status,
            "reason": self.reason,
        }


def as_verdict(entry: CandidateVerdict | Row) -> CandidateVerdict:
    if isinstance(entry, CandidateVerdict):
        return entry
    name, backend, quality, cost, latency, fits, failures, score = entry
    return CandidateVerdict(name, backend, quality, cost, latency, "rejected", None, fits,
                            failures, score)


class Decision:
    """The pick, why, and every candidate with its quality, expected cost and verdict.

    ``basis`` says what adequacy was judged on: ``prediction`` (the predictor had evidence for
    this kind) or ``score`` (the measured per-kind score, the rule without evidence).
    ``predictions`` keeps every candidate's prediction, rejected ones included, for explaining.
    """

    __slots__ = ("_candidates", "_entries", "_order", "basis", "best_effort", "chosen", "closest",
                 "kind", "min_quality", "predictions", "reason", "rule", "threshold")

    def __init__(
        self,
        kind: str,
        min_quality: float,
        chosen: CandidateVerdict | None,
        reason: str,
        entries: Sequence[CandidateVerdict | Row],
        *,
        best_effort: bool = False,
        closest: CandidateVerdict | None = None,
        basis: Basis = "score",
        rule: str = "cheapest adequate",
        threshold: float | None = None,
        predictions: dict[str, Prediction] | None = None,
        order: Sequence[CandidateVerdict] | None = None,
    ) -> None:
        self.kind = kind
        self.min_quality = min_quality
        self.chosen = chosen
        self.reason = reason
        self.best_effort = best_effort
        self.closest = closest
        self.basis: Basis = basis
        self.rule = rule
        self.threshold = min_quality if threshold is None else threshold
        self.predictions = predictions or {}
        self._entries = entries
        self._order = order  # the adequate candidates in the rule's order, chosen first
        self._candidates: list[CandidateVerdict] | None = None

    @property
    def candidates(self) -> list[CandidateVerdict]:
        """Every candidate in catalogue order."""
        if self._candidates is None:
            self._candidates = [self._attach(as_verdict(e)) for e in self._entries]
        return self._candidates

    def _attach(self, v: CandidateVerdict) -> CandidateVerdict:
        if v.prediction is None and self.predictions:
            v.prediction = self.predictions.get(v.name)
        return v

    def ranked(self) -> Sequence[CandidateVerdict]:
        """The chosen model then the other adequate ones in the rule's order: the cascade order.

        A copy of a list; a lazy sequence (``routing.index``) as it is: its verdicts are made
        as they are read.
        """
        if isinstance(self._order, list):
            return list(self._order)
        if self._order is not None:
            return self._order
        pool = self._candidates if self._candidates is not None else self._entries
        usable = [e for e in pool if isinstance(e, CandidateVerdict) and e.status != "rejected"]
        usable.sort(key=lambda v: (v.status != "chosen", *rank_key(v)))
        return usable

    def to_dict(self) -> dict[str, Any]:
        """The public shape (``yard route explain --json``, the API)."""
        return {
            "kind": self.kind,
            "min_quality": self.min_quality,
            "basis": self.basis,
            "rule": self.rule,
            "threshold": self.threshold,
            "chosen": self.chosen.name if self.chosen else None,
            "reason": self.reason,
            "best_effort": self.best_effort,
            "candidates": [v.to_dict() for v in self.candidates],
        }

    def require(self) -> CandidateVerdict:
        """The chosen candidate, or ``NoAdequateModel`` naming the closest one."""
        if self.chosen is None:
            considered = [v for v in self.candidates if v.failures is not PINNED_OUT]
            if considered and all(_too_small(v) for v in considered):
                # No candidate's window holds prompt + max_tokens: name that field.
                raise NoAdequateModel(f"{self.reason}; lower max_tokens (prompt + max_tokens "
                                      "must fit the model's context window)", field="max_tokens")
            quality_only = self.closest is not None and self.closest.fits
            raise NoAdequateModel(self.reason, field="min_quality" if quality_only else None)
        return self.chosen

    def __repr__(self) -> str:
        chosen = self.chosen.name if self.chosen else None
        return f"Decision({self.kind}, chosen={chosen!r}, reason={self.reason!r})"


def _too_small(v: CandidateVerdict) -> bool:
    """Rejected (among other reasons) for its context window (``decide``'s failure text)."""
    return any(f[0].startswith("context window") for f in v.failures)


def rank_key(v: CandidateVerdict) -> tuple[float, float, str]:
    return (v.expected_cost_usd, -(v.quality if v.quality is not None else -1.0), v.name)


def closeness(v: CandidateVerdict) -> tuple[int, int, float, float, str]:
    """Fits the hard limits first, then fewest unmet requirements, best quality, cheapest."""
    return (
        0 if v.fits else 1,
        v.unmet,
        -(v.quality if v.quality is not None else -1.0),
        v.expected_cost_usd,
        v.name,
    )


__all__ = ["Basis", "CandidateVerdict", "Decision", "Failure", "Status"]
