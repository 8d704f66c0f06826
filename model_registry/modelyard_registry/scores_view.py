"""Scores and measured speed shaped for display: one place for the CLI, the API and the page.

`yard models list/show`, `GET /v1/models` and the models page all show ``public_models``.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from .catalog import ModelEntry, ModelPublic, list_models, to_public
from .pricing import prefill_rate
from .routing.candidates import Candidate, MachineLimits, expected_cost
from .routing.snapshot import load_candidates
from .scores import Score, current_scores
from .settings import Settings


def scores_by_model(session: Session) -> dict[str, dict[str, dict[str, Any]]]:
    """``{model: {kind: {value, ci_low, ci_high, n, metric, suite_version, tokens_per_s, ...}}}``.

    Of several rows per (model, kind) the current one is shown (``current_scores``), the same
    row the router judges.
    """
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for s in current_scores(session.exec(select(Score)).all()).values():
        result.setdefault(s.model_name, {})[s.kind] = {
            "value": s.value,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
            "n": s.n,
            "metric": s.metric,
            "suite_version": s.suite_version,
            "tokens_per_s": s.tokens_per_s,
            "latency_s": s.latency_s,
            "prompt_tokens_per_s": prefill_rate(
                latency_s=s.latency_s, prompt_tokens_mean=s.prompt_tokens_mean,
                completion_tokens_mean=s.completion_tokens_mean, tokens_per_s=s.tokens_per_s),
            "completion_tokens_mean": s.completion_tokens_mean,
        }
    return result


def evaluation_status(scores: dict[str, dict[str, Any]] | None) -> str:
    """``unmeasured``, ``quick`` (a partial suite run, e.g. at pull time) or ``full``."""
    if not scores:
        return "unmeasured"
    partial = any(":sample" in v or ":first" in v  # ":first<N>": rows of older releases
                  for v in (str(s.get("suite_version", "")) for s in scores.values()))
    return "quick" if partial else "full"


def public_model(entry: ModelEntry, scores: dict[str, dict[str, Any]] | None,
                 candidate: Candidate | None, limits: MachineLimits) -> ModelPublic:
    public = to_public(entry, scores)
    update: dict[str, Any] = {"evaluation": evaluation_status(scores)}
    if candidate is not None:
        update["decode_tokens_per_s"] = candidate.tokens_per_s
        update["prompt_tokens_per_s"] = candidate.prefill_tokens_per_s
        if candidate.is_local:
            update["price_out_derived"] = expected_cost(candidate, 0, 1_000_000, limits)
    return public.model_copy(update=update)


def public_models(session: Session, settings: Settings,
                  entries: list[ModelEntry] | None = None) -> list[ModelPublic]:
    """The public shape of ``entries`` (default: the catalogue) with measured speed.

    Speed and the price derived from it are exactly what the router sees (``load_candidates``).
    """
    limits = MachineLimits.from_settings(settings)
    candidates = {c.name: c for c in load_candidates(session, settings)}
    scores = scores_by_model(session)
    chosen = list_models(session) if entries is None else entries
    return [public_model(e, scores.get(e.name), candidates.get(e.name), limits) for e in chosen]
