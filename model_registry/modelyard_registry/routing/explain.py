"""The decision for one prompt, read from the database: what `yard route explain` and the API show.

``explain`` snapshots the catalogue, counts the prompt's tokens, asks the active predictor (when
one is trained and has evidence for the kind) and runs the pure ``decide``; ``route`` is the same
but raises when nothing is adequate.
"""

from __future__ import annotations

from sqlmodel import Session

from ..runtimes import RuntimeFactory
from ..settings import Settings
from ..taskspec import TaskSpec
from .candidates import MachineLimits
from .decide import decide
from .snapshot import load_candidates
from .tokens import count_prompt_tokens
from .verdicts import Decision


def explain(
    session: Session,
    settings: Settings,
    spec: TaskSpec,
    prompt_text: str,
    runtimes: RuntimeFactory | None = None,
) -> Decision:
    """The decision for this prompt, even when nothing is adequate (``chosen`` is then None)."""
    candidates = load_candidates(session, settings)
    counts = count_prompt_tokens(session, candidates, prompt_text, runtimes)
    return decide(spec, counts, candidates, MachineLimits.from_settings(settings))


def route(
    session: Session,
    settings: Settings,
    spec: TaskSpec,
    prompt_text: str,
    runtimes: RuntimeFactory | None = None,
) -> Decision:
    """Like ``explain`` but raises ``NoAdequateModel`` (naming the closest candidate)."""
    decision = explain(session, settings, spec, prompt_text, runtimes)
    decision.require()
    return decision


__all__ = ["explain", "route"]
