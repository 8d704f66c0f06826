"""What the decision reads about each model, and what it costs on this machine.

``Candidate`` is a frozen snapshot of one catalogue entry with its measured figures (built by
``snapshot.load_candidates``); ``MachineLimits`` holds this machine's limits and the inputs that
price local models.  Both are plain data so the decision stays a pure function over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalog import Backend, Capability
from ..pricing import expected_local_cost, remote_cost
from ..settings import Settings
from ..taskspec import TaskKind

LOCAL = Backend.llama_cpp.value
_TEXT = frozenset({Capability.chat.value, Capability.completion.value})


@dataclass(frozen=True, slots=True)
class Candidate:
    """A snapshot of one catalogue entry with its measured figures: all the router reads."""

    name: str
    backend: str
    capabilities: frozenset[str]
    context_length: int | None
    price_in: float
    price_out: float
    tokens_per_s: float | None
    health: str
    enabled: bool
    ram_bytes: int | None
    # Per kind, the score routed on: the low end of the mean's 95% interval over the items
    # measured (``confidence.routed_score``, applied by ``snapshot``), not the bare mean.
    scores: dict[str, float] = field(default_factory=dict)
    prefill_tokens_per_s: float | None = None
    # Mean completion tokens per kind, measured by the evals: what a call is expected to generate
    # (capped by the request's max_tokens), so a terse model is priced for its short answers.
    output_tokens: dict[str, float] = field(default_factory=dict)
    is_local: bool = field(init=False)
    mean_score: float | None = field(init=False)  # generic chat's quality
    embeddings_only: bool = field(init=False)  # serves embeddings, never generates text

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_local", self.backend == LOCAL)
        object.__setattr__(self, "embeddings_only",
                           Capability.embeddings.value in self.capabilities
                           and not self.capabilities & _TEXT)
        mean = sum(self.scores.values()) / len(self.scores) if self.scores else None
        object.__setattr__(self, "mean_score", mean)


@dataclass(frozen=True, slots=True)
class MachineLimits:
    """Limits of this machine, and the inputs that price local models."""

    ram_budget_bytes: int
    n_ctx: int
    machine_cost_per_hour: float
    unmeasured_tokens_per_s: float = 10.0
    prefill_factor: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> MachineLimits:
        return cls(
            ram_budget_bytes=settings.ram_budget_mb * 2**20,
            n_ctx=settings.n_ctx,
            machine_cost_per_hour=settings.machine_cost_per_hour,
            unmeasured_tokens_per_s=settings.unmeasured_tokens_per_s,
            prefill_factor=settings.prefill_factor,
        )


def expected_cost(c: Candidate, prompt_tokens: int, output_tokens: int,
                  limits: MachineLimits) -> float:
    """USD ``c`` is expected to cost for these tokens: per token if remote, machine time if local.

    ``decide`` inlines this same arithmetic in its hot loop; everything else calls this.
    """
    if not c.is_local:
        return remote_cost(prompt_tokens, output_tokens, c.price_in, c.price_out)
    tps = c.tokens_per_s or limits.unmeasured_tokens_per_s
    prefill = c.prefill_tokens_per_s or tps * limits.prefill_factor
    return expected_local_cost(prompt_tokens, output_tokens, tps, prefill,
                               limits.machine_cost_per_hour)


def expected_output_tokens(c: Candidate, kind: str, max_tokens: int) -> int:
    """Tokens ``c`` is expected to generate for ``kind``, at most ``max_tokens``.

    Its measured mean answer length for the kind (for ``chat``, the mean over measured kinds),
    capped by ``max_tokens``; ``max_tokens`` itself when unmeasured (the pessimistic budget: a
    call may stop early, never later).
    """
    lengths = c.output_tokens
    if kind == TaskKind.chat:
        mean = sum(lengths.values()) / len(lengths) if lengths else None
    else:
        mean = lengths.get(kind)
    if mean is None:
        return max_tokens
    return min(max_tokens, max(1, round(mean)))


def quality_for(scores: dict[str, float], kind: str) -> float | None:
    """The measured score for ``kind``; for generic ``chat``, the mean across measured kinds."""
    if kind == TaskKind.chat:
        return sum(scores.values()) / len(scores) if scores else None
    return scores.get(kind)  # decide inlines this, with Candidate.mean_score for chat


__all__ = ["LOCAL", "Candidate", "MachineLimits", "expected_cost", "expected_output_tokens",
           "quality_for"]
