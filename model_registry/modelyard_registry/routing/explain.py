"""The decision for one request, from the database: the cascade, explain CLI and API all run it.

``decide_request`` snapshots the catalogue, counts the prompt's tokens, asks the active predictor
(when one is trained and has evidence for the kind) and runs the pure ``decide``.  ``explain``
returns that decision even when nothing is adequate; ``route`` raises then.
"""

from __future__ import annotations

from sqlmodel import Session

from ..pricing import estimate_tokens
from ..runtimes import RuntimeFactory
from ..settings import Settings
from ..taskspec import TaskSpec
from .candidates import Candidate, MachineLimits
from .decide import decide
from .index import CatalogueIndex
from .serving import ActivePredictor
from .snapshot import load_candidates
from .tokens import count_prompt_tokens, exact_counts
from .verdicts import Decision


def decide_request(
    session: Session,
    settings: Settings,
    spec: TaskSpec,
    prompt_text: str,
    *,
    runtimes: RuntimeFactory | None = None,
    predictor: ActivePredictor | None = None,
    query_text: str | None = None,
    limits: MachineLimits | None = None,
    candidates: list[Candidate] | None = None,
    index: CatalogueIndex | None = None,
) -> tuple[Decision, list[Candidate]]:
    """The decision and the snapshot it was made on.

    ``prompt_text`` sizes the call (its tokens); ``query_text`` is what the predictor compares
    with its evidence (the user's words, as ``evidence.calls.evidence_text`` keeps them), and
    defaults to the prompt.  A pinned call skips prediction: it skips the quality bar anyway.
    ``candidates`` is a cached snapshot (``catalog_cache``); without it the catalogue is read.
    ``index`` is that snapshot's columns (``CatalogueIndex``): the same decision, vectorised.
    """
    if index is not None:
        candidates = index.candidates
    elif candidates is None:
        candidates = load_candidates(session, settings)
    counts: dict[str, int] | int
    if index is not None:
        # One estimate for all, unless a loaded local model counts exactly (then per name).
        estimate = estimate_tokens(prompt_text)
        exact = exact_counts(session, candidates, prompt_text, runtimes)
        counts = {**dict.fromkeys(index.names, estimate), **exact} if exact else estimate
    else:
        counts = count_prompt_tokens(session, candidates, prompt_text, runtimes)
    predictions = rule = None
    if predictor is not None and spec.pinned_model is None:
        text = query_text or prompt_text
        predictions = predictor.predictions(session, str(spec.kind), text,
                                            [c.name for c in candidates])
        if predictions:
            rule = predictor.rule(spec, text)
    limits = limits or MachineLimits.from_settings(settings)
    decision = (index.decide(spec, counts, limits, predictions, rule) if index is not None
                else decide(spec, counts, candidates, limits, predictions, rule))
    return decision, candidates


def explain(
    session: Session,
    settings: Settings,
    spec: TaskSpec,
    prompt_text: str,
    runtimes: RuntimeFactory | None = None,
    *,
    predictor: ActivePredictor | None = None,
) -> Decision:
    """The decision for this prompt, even when nothing is adequate (``chosen`` is then None)."""
    decision, _ = decide_request(session, settings, spec, prompt_text, runtimes=runtimes,
                                 predictor=predictor)
    return decision


def route(
    session: Session,
    settings: Settings,
    spec: TaskSpec,
    prompt_text: str,
    runtimes: RuntimeFactory | None = None,
    *,
    predictor: ActivePredictor | None = None,
) -> Decision:
    """Like ``explain`` but raises ``NoAdequateModel`` (naming the closest candidate)."""
    decision = explain(session, settings, spec, prompt_text, runtimes, predictor=predictor)
    decision.require()
    return decision


__all__ = ["decide_request", "explain", "route"]
