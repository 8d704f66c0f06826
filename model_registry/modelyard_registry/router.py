"""Old home of the router, now ``modelyard_registry.routing``: re-exports until callers move."""

from .routing.candidates import Candidate, MachineLimits, expected_cost, quality_for
from .routing.decide import decide
from .routing.explain import explain, route
from .routing.snapshot import candidate_from, load_candidates
from .routing.tokens import count_prompt_tokens
from .routing.verdicts import CandidateVerdict, Decision

__all__ = [
    "Candidate",
    "CandidateVerdict",
    "Decision",
    "MachineLimits",
    "candidate_from",
    "count_prompt_tokens",
    "decide",
    "expected_cost",
    "explain",
    "load_candidates",
    "quality_for",
    "route",
]
