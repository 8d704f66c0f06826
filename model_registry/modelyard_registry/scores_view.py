"""Scores shaped for display (`yard models list/show`, `GET /v1/models`)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from .scores import Score


def scores_by_model(session: Session) -> dict[str, dict[str, dict[str, Any]]]:
    """``{model: {kind: {value, ci_low, ci_high, n, metric, suite_version, tokens_per_s}}}``.

    The newest row per (model, kind) wins when several suite versions exist.
    """
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for s in session.exec(select(Score).order_by(col(Score.created_at))).all():
        result.setdefault(s.model_name, {})[s.kind] = {
            "value": s.value,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
            "n": s.n,
            "metric": s.metric,
            "suite_version": s.suite_version,
            "tokens_per_s": s.tokens_per_s,
            "latency_s": s.latency_s,
        }
    return result
