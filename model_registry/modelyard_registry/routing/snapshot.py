"""The catalogue as the decision sees it: one ``Candidate`` per entry with its measured figures.

The only module of the decision path that reads the database (two queries): entries, and their
Scores, from which it takes the current score per kind (``scores.current_scores``: the newest
suite, the run over most of its items) and throughput weighted by items measured.
A score enters the decision as ``confidence.routed_score`` (the low end of its 95% interval over
the items measured), so a few lucky items never outrank a well-measured model.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from ..catalog import ModelEntry, list_models
from ..pricing import prefill_rate
from ..scores import Score, current_scores
from ..settings import Settings
from .candidates import Candidate
from .confidence import routed_score


def _measured(
    rows: list[Score],
) -> tuple[dict[str, float], float | None, float | None, dict[str, float]]:
    """Routed scores, mean answer lengths and speeds, all from the current row of each kind.

    Per kind the current row counts (``current_scores``), its mean discounted for its item count
    (``routed_score``).  Decode and prompt speed are the *fastest* of those rows: a measurement
    can only be slowed by what else ran on the machine (other runners, other tenants, a bench),
    never sped up, so the fastest current one is the closest to the model's own speed.  An
    n-weighted mean over every row let suites run at load 6-9 price Qwen2.5-0.5B (8 tok/s)
    above Qwen2.5-1.5B (14 tok/s), and the router took the 1.5B as the cheaper rung (#12).
    Superseded rows (an older suite version) no longer count for speed either.
    """
    scores: dict[str, float] = {}
    lengths: dict[str, float] = {}
    speeds: list[float] = []
    prefills: list[float] = []
    for (_model, kind), row in current_scores(rows).items():
        scores[kind] = routed_score(row.value, row.n)
        if row.completion_tokens_mean:
            lengths[kind] = row.completion_tokens_mean
        if row.tokens_per_s:
            speeds.append(float(row.tokens_per_s))
        prefill = prefill_rate(latency_s=row.latency_s, prompt_tokens_mean=row.prompt_tokens_mean,
                               completion_tokens_mean=row.completion_tokens_mean,
                               tokens_per_s=row.tokens_per_s)
        if prefill is not None:
            prefills.append(prefill)
    return scores, max(speeds, default=None), max(prefills, default=None), lengths


def candidate_from(entry: ModelEntry, rows: list[Score]) -> Candidate:
    scores, tps, pre, lengths = _measured(rows)
    return Candidate(
        name=entry.name,
        backend=entry.backend.value,
        capabilities=frozenset(entry.capabilities),
        context_length=entry.context_length,
        price_in=entry.price_in,
        price_out=entry.price_out,
        tokens_per_s=tps,
        health=entry.health.value,
        enabled=entry.enabled,
        ram_bytes=entry.ram_bytes,
        scores=scores,
        prefill_tokens_per_s=pre,
        output_tokens=lengths,
    )


def load_candidates(session: Session, settings: Settings) -> list[Candidate]:
    """Snapshot the catalogue and its Scores (two queries) for ``decide``."""
    del settings  # part of the signature so a future source (e.g. VRAM probes) needs no change
    rows: dict[str, list[Score]] = {}
    for s in session.exec(select(Score).order_by(col(Score.created_at), col(Score.id))).all():
        rows.setdefault(s.model_name, []).append(s)
    return [candidate_from(e, rows.get(e.name, [])) for e in list_models(session)]


__all__ = ["candidate_from", "load_candidates"]
