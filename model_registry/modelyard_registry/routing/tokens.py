"""Prompt tokens per candidate: each model's own count where that is cheap, else an estimate.

Cheap means a local model already in memory (``RuntimeFactory.loaded``): its runtime counts with
the model's tokenizer (``Runtime.count_tokens``).  A model that is not loaded is never loaded just
to be priced, and a remote tokenizer is a network round-trip away, so both get
``pricing.estimate_tokens`` (characters / 4, rounded up).
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from ..catalog import find_model
from ..pricing import estimate_tokens
from ..runtimes import RuntimeFactory
from .candidates import Candidate

log = logging.getLogger(__name__)


def count_prompt_tokens(
    session: Session, candidates: list[Candidate], text: str, runtimes: RuntimeFactory | None = None
) -> dict[str, int]:
    """Tokens of ``text`` per candidate name (see the module docstring for which are exact)."""
    estimate = estimate_tokens(text)
    counts = {c.name: estimate for c in candidates}
    counts.update(exact_counts(session, candidates, text, runtimes))
    return counts


def exact_counts(
    session: Session, candidates: list[Candidate], text: str, runtimes: RuntimeFactory | None = None
) -> dict[str, int]:
    """Tokens of ``text`` for the loaded local models only (usually none: then no work at all)."""
    counts: dict[str, int] = {}
    if runtimes is None:
        return counts
    loaded = runtimes.loaded()
    if not loaded:
        return counts
    for c in candidates:
        if not c.is_local or c.name not in loaded:
            continue
        entry = find_model(session, c.name)
        if entry is None:
            continue
        try:
            counts[c.name] = runtimes.for_entry(entry).count_tokens(text)
        except Exception as exc:  # a tokenizer hiccup must not fail routing: keep the estimate
            log.warning("token count for %s fell back to the estimate: %s", c.name, exc)
    return counts


__all__ = ["count_prompt_tokens", "exact_counts"]
