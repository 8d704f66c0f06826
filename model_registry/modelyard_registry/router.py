"""TaskSpec -> Decision: the cheapest *adequate* model, with the reason for every candidate.

``decide`` is a pure function of the spec, prompt token counts, a snapshot of the catalogue
(``Candidate``: capabilities, limits, prices, health, measured scores and speed) and this
machine's limits; it does no I/O, so it is unit-tested with hand-built catalogues and runs in
microseconds.  ``load_candidates`` and ``route`` are the impure edges that read the database.

A candidate is adequate when it is enabled, not unhealthy (unknown health is allowed: a fresh
remote entry has not been probed yet), has the capabilities the task needs, its context window
fits prompt + max output (for local models the effective window is ``min(context_length,
n_ctx)``), it fits the RAM budget if local, its expected latency fits the budget if one is given,
and its measured score for the task kind reaches ``min_quality`` (the point estimate, not the
interval).  A model with no score for the kind is not adequate unless ``allow_unscored``.  The
adequate model with the lowest expected cost wins; ties go to the higher quality, then the name.

A pinned model skips the quality bar (the caller has decided) but not the hard limits.  With
``best_effort`` and nothing adequate, the best-scoring model that fits the hard limits is chosen
and the decision is flagged ``best_effort``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlmodel import Session, col, select

from .catalog import Backend, Capability, ModelEntry, list_models
from .errors import CapabilityMissing, InvalidInput, NoAdequateModel, NotFound
from .pricing import (
    PER_MILLION,
    SECONDS_PER_HOUR,
    estimate_tokens,
    expected_local_cost,
    prefill_rate,
    remote_cost,
)
from .runtimes import RuntimeFactory
from .scores import Score
from .settings import Settings
from .taskspec import TaskKind, TaskSpec

log = logging.getLogger(__name__)

Status = Literal["chosen", "adequate", "rejected"]
LOCAL = Backend.llama_cpp.value
NOT_PINNED = "not the pinned model"
_DISABLED: tuple[str, tuple[Any, ...]] = ("disabled", ())
_UNHEALTHY: tuple[str, tuple[Any, ...]] = ("unhealthy", ())


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
    scores: dict[str, float] = field(default_factory=dict)
    prefill_tokens_per_s: float | None = None
    is_local: bool = field(init=False)
    mean_score: float | None = field(init=False)  # generic chat's quality

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_local", self.backend == LOCAL)
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


Failure = tuple[str, tuple[Any, ...]]  # (str.format template, its arguments)
# A rejected candidate as decide leaves it: name, backend, quality, cost, latency, fits, failures.
_Row = tuple[str, str, float | None, float, float | None, bool, list[Failure]]
_PINNED_OUT: list[Failure] = [(NOT_PINNED, ())]


class CandidateVerdict:
    """One candidate as the router saw it: quality, expected cost and latency, status, reason."""

    __slots__ = ("_failures", "_reason", "backend", "expected_cost_usd", "expected_latency_s",
                 "fits", "name", "quality", "status")

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
    ) -> None:
        self.name = name
        self.backend = backend
        self.quality = quality
        self.expected_cost_usd = expected_cost_usd
        self.expected_latency_s = expected_latency_s
        self.status: Status = status
        self.fits = fits  # passes every hard limit (all but the quality bar)
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
    def unmet(self) -> int:
        """How many requirements it fails (0 for adequate candidates)."""
        return len(self._failures) if self.status == "rejected" else 0

    def __repr__(self) -> str:
        return (f"CandidateVerdict({self.name!r}, {self.status}, quality={self.quality}, "
                f"expected_cost_usd={self.expected_cost_usd:.3g}, reason={self.reason!r})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "quality": self.quality,
            "expected_cost_usd": self.expected_cost_usd,
            "expected_latency_s": self.expected_latency_s,
            "status": self.status,
            "reason": self.reason,
        }


def _verdict(entry: CandidateVerdict | _Row) -> CandidateVerdict:
    if isinstance(entry, CandidateVerdict):
        return entry
    name, backend, quality, cost, latency, fits, failures = entry
    return CandidateVerdict(name, backend, quality, cost, latency, "rejected", None, fits,
                            failures)


class Decision:
    """The pick, why, and every candidate with its quality, expected cost and verdict.

    Rejected candidates are kept as plain tuples until ``candidates`` is first read, and their
    reasons are rendered from templates only then: building and formatting a thousand verdicts
    costs more than deciding, and most decisions are never explained.
    """

    __slots__ = ("_candidates", "_entries", "best_effort", "chosen", "closest", "kind",
                 "min_quality", "reason")

    def __init__(
        self,
        kind: str,
        min_quality: float,
        chosen: CandidateVerdict | None,
        reason: str,
        entries: list[CandidateVerdict | _Row],
        *,
        best_effort: bool = False,
        closest: CandidateVerdict | None = None,
    ) -> None:
        self.kind = kind
        self.min_quality = min_quality
        self.chosen = chosen
        self.reason = reason
        self.best_effort = best_effort
        self.closest = closest
        self._entries = entries
        self._candidates: list[CandidateVerdict] | None = None

    @property
    def candidates(self) -> list[CandidateVerdict]:
        """Every candidate in catalogue order."""
        if self._candidates is None:
            self._candidates = [_verdict(e) for e in self._entries]
        return self._candidates

    def ranked(self) -> list[CandidateVerdict]:
        """The chosen model then the other adequate ones, cheapest first: the cascade order."""
        pool = self._candidates if self._candidates is not None else self._entries
        usable = [e for e in pool if isinstance(e, CandidateVerdict) and e.status != "rejected"]
        usable.sort(key=_rank_key)
        return usable

    def to_dict(self) -> dict[str, Any]:
        """The public shape (``yard route explain --json``, the API)."""
        return {
            "kind": self.kind,
            "min_quality": self.min_quality,
            "chosen": self.chosen.name if self.chosen else None,
            "reason": self.reason,
            "best_effort": self.best_effort,
            "candidates": [v.to_dict() for v in self.candidates],
        }

    def require(self) -> CandidateVerdict:
        """The chosen candidate, or ``NoAdequateModel`` naming the closest one."""
        if self.chosen is None:
            quality_only = self.closest is not None and self.closest.fits
            raise NoAdequateModel(self.reason, field="min_quality" if quality_only else None)
        return self.chosen

    def __repr__(self) -> str:
        chosen = self.chosen.name if self.chosen else None
        return f"Decision({self.kind}, chosen={chosen!r}, reason={self.reason!r})"


def _rank_key(v: CandidateVerdict) -> tuple[float, float, str]:
    return (v.expected_cost_usd, -(v.quality if v.quality is not None else -1.0), v.name)


def _required(spec: TaskSpec) -> tuple[str, ...]:
    caps = []
    if spec.needs_json_schema:
        caps.append(Capability.json_schema.value)
    if spec.needs_tools:
        caps.append(Capability.tools.value)
    return tuple(caps)


def quality_for(scores: dict[str, float], kind: str) -> float | None:
    """The measured score for ``kind``; for generic ``chat``, the mean across measured kinds."""
    if kind == TaskKind.chat:
        return sum(scores.values()) / len(scores) if scores else None
    return scores.get(kind)  # decide inlines this, with Candidate.mean_score for chat


def decide(
    spec: TaskSpec,
    prompt_tokens: dict[str, int] | int,
    candidates: list[Candidate],
    limits: MachineLimits,
) -> Decision:
    """Pick the cheapest adequate candidate; pure, raises only for bad input.

    ``prompt_tokens`` is one count for every candidate, or a count per candidate name (each
    counted by that model's own tokenizer); a name missing from the dict gets the largest count.
    Raises ``InvalidInput`` for negative counts, ``NotFound`` for a pinned model that is not in
    the catalogue, ``CapabilityMissing`` for a pinned model that lacks a needed capability.
    """
    if isinstance(prompt_tokens, int):
        default_tokens, per_model = prompt_tokens, None
    else:
        per_model = prompt_tokens
        default_tokens = max(prompt_tokens.values(), default=0)
        if min(prompt_tokens.values(), default=0) < 0:
            raise InvalidInput("prompt token counts must be >= 0", field="prompt_tokens")
    if default_tokens < 0:
        raise InvalidInput("prompt token count must be >= 0", field="prompt_tokens")
    required = _required(spec)
    kind = spec.kind.value
    pinned = spec.pinned_model
    if pinned is not None:
        _check_pinned(pinned, required, candidates)

    out_tokens = spec.max_output_tokens
    min_q = spec.min_quality
    budget_s = spec.latency_budget_s
    allow_unscored = spec.allow_unscored
    is_chat = kind == TaskKind.chat
    # The arithmetic of expected_cost (and the latency it implies), inlined: this loop
    # runs once per catalogue entry per request (target: p99 < 1 ms for 1,000 entries).
    rate = limits.machine_cost_per_hour / SECONDS_PER_HOUR
    unmeasured = limits.unmeasured_tokens_per_s
    factor = limits.prefill_factor
    n_ctx = limits.n_ctx
    ram_budget = limits.ram_budget_bytes
    entries: list[CandidateVerdict | _Row] = []
    adequate: list[CandidateVerdict] = []
    append = entries.append
    for c in candidates:
        name = c.name
        tokens = default_tokens if per_model is None else per_model.get(name, default_tokens)
        quality = c.mean_score if is_chat else c.scores.get(kind)
        tps = c.tokens_per_s
        local = c.is_local
        latency: float | None
        if local:
            tps = tps or unmeasured
            latency = tokens / (c.prefill_tokens_per_s or tps * factor) + out_tokens / tps
            cost = latency * rate
        else:
            cost = (tokens * c.price_in + out_tokens * c.price_out) / PER_MILLION
            if tps:
                latency = tokens / (c.prefill_tokens_per_s or tps * factor) + out_tokens / tps
            else:
                latency = None
        if pinned is not None and name != pinned:
            append((name, c.backend, quality, cost, latency, False, _PINNED_OUT))
            continue

        failures: list[Failure] = []
        if not c.enabled:
            failures.append(_DISABLED)
        if c.health == "unhealthy":
            failures.append(_UNHEALTHY)
        for cap in required:
            if cap not in c.capabilities:
                failures.append(("lacks {}", (cap,)))
        window = c.context_length
        if local and (not window or window > n_ctx):
            window = n_ctx
        needed = tokens + out_tokens
        if window is not None and needed > window:
            failures.append(("context window {} < {} tokens needed", (window, needed)))
        if local and c.ram_bytes is not None and c.ram_bytes > ram_budget:
            failures.append(("needs {} MB RAM, budget {} MB",
                             (c.ram_bytes // 2**20, ram_budget // 2**20)))
        if budget_s is not None and latency is not None and latency > budget_s:
            failures.append(("expected {:.2g} s > latency budget {:g} s", (latency, budget_s)))
        fits = not failures
        if pinned is None:
            if quality is None:
                if not allow_unscored:
                    failures.append(("no {} score (run: yard models eval {})", (kind, name)))
            elif quality < min_q:
                failures.append(("quality {:.2f} < {:.2f} required", (quality, min_q)))
        if failures:
            append((name, c.backend, quality, cost, latency, fits, failures))
        else:
            v = CandidateVerdict(name, c.backend, quality, cost, latency, "adequate")
            append(v)
            adequate.append(v)
    return _conclude(spec, entries, adequate)


def _check_pinned(pinned: str, required: tuple[str, ...], candidates: list[Candidate]) -> None:
    match = next((c for c in candidates if c.name == pinned), None)
    if match is None:
        raise NotFound(f"pinned model {pinned!r} is not in the catalogue", field="pinned_model")
    missing = [cap for cap in required if cap not in match.capabilities]
    if missing:
        raise CapabilityMissing(
            f"pinned model {pinned!r} lacks {', '.join(missing)}", field="pinned_model"
        )


def _conclude(
    spec: TaskSpec, entries: list[CandidateVerdict | _Row], adequate: list[CandidateVerdict]
) -> Decision:
    kind, min_q = spec.kind.value, spec.min_quality
    if adequate:
        adequate.sort(key=_rank_key)
        chosen = adequate[0]
        chosen.status = "chosen"
        if spec.pinned_model is not None:
            chosen.reason = "pinned by the caller (quality bar skipped)"
        elif chosen.quality is None:
            chosen.reason = (f"cheapest adequate: ${chosen.expected_cost_usd:.3g} expected, "
                             "unscored, allowed")
        else:
            chosen.reason = (f"cheapest adequate: ${chosen.expected_cost_usd:.3g} expected, "
                             f"quality {chosen.quality:.2f} >= {min_q:.2f}")
        cheapest = chosen.expected_cost_usd
        for v in adequate[1:]:  # rendered lazily, like rejection reasons
            if v.quality is None:
                v._failures = [("adequate (unscored, allowed) but ${:.3g} expected > ${:.3g}",
                                (v.expected_cost_usd, cheapest))]
            else:
                v._failures = [("adequate (quality {:.2f} >= {:.2f}) but ${:.3g} expected > "
                                "${:.3g}", (v.quality, min_q, v.expected_cost_usd, cheapest))]
        return Decision(kind, min_q, chosen, f"{chosen.name}: {chosen.reason}", entries)

    # Nothing adequate (the rare path): materialise every verdict to explain it.
    verdicts = [_verdict(e) for e in entries]
    considered = [v for v in verdicts if v._failures is not _PINNED_OUT]
    closest = min(considered, key=_closeness, default=None)
    decision = Decision(kind, min_q, None, "", entries, closest=closest)
    decision._candidates = verdicts
    fitting = [v for v in considered if v.fits]
    if spec.best_effort and spec.pinned_model is None and fitting:
        best = min(fitting, key=lambda v: (-(v.quality if v.quality is not None else -1.0),
                                           v.expected_cost_usd, v.name))
        best.status = "chosen"
        best.reason = f"best effort, not adequate: {best.reason}"
        decision.chosen, decision.best_effort = best, True
        decision.reason = (f"{best.name}: no model is adequate for {kind} at quality "
                           f"{min_q:.2f}; {best.reason}")
    elif closest is None:
        decision.reason = f"no model in the catalogue for {kind}"
    else:
        decision.reason = (f"no adequate model for {kind} (min quality {min_q:.2f}): closest is "
                           f"{closest.name!r}, which has: {closest.reason}")
    return decision


def _closeness(v: CandidateVerdict) -> tuple[int, int, float, float, str]:
    """Fits the hard limits first, then fewest unmet requirements, best quality, cheapest."""
    return (
        0 if v.fits else 1,
        v.unmet,
        -(v.quality if v.quality is not None else -1.0),
        v.expected_cost_usd,
        v.name,
    )


# --- impure edges ---------------------------------------------------------------------------


def _measured(rows: list[Score]) -> tuple[dict[str, float], float | None, float | None]:
    """Scores per kind (newest row wins) and throughput averaged over rows, weighted by n."""
    scores: dict[str, float] = {}
    for row in rows:  # ordered oldest first
        scores[row.kind] = row.value
    speed = [(r.tokens_per_s, r.n) for r in rows if r.tokens_per_s]
    prefill = [
        (p, r.n)
        for r in rows
        if (p := prefill_rate(latency_s=r.latency_s, prompt_tokens_mean=r.prompt_tokens_mean,
                              completion_tokens_mean=r.completion_tokens_mean,
                              tokens_per_s=r.tokens_per_s)) is not None
    ]

    def weighted(pairs: list[tuple[float, int]]) -> float | None:
        total = sum(max(n, 1) for _, n in pairs)
        return sum(v * max(n, 1) for v, n in pairs) / total if pairs else None

    return scores, weighted([(float(v), n) for v, n in speed]), weighted(prefill)


def candidate_from(entry: ModelEntry, rows: list[Score]) -> Candidate:
    scores, tps, pre = _measured(rows)
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
    )


def load_candidates(session: Session, settings: Settings) -> list[Candidate]:
    """Snapshot the catalogue and its Scores (two queries) for ``decide``."""
    del settings  # part of the signature so a future source (e.g. VRAM probes) needs no change
    rows: dict[str, list[Score]] = {}
    for s in session.exec(select(Score).order_by(col(Score.created_at), col(Score.id))).all():
        rows.setdefault(s.model_name, []).append(s)
    return [candidate_from(e, rows.get(e.name, [])) for e in list_models(session)]


def count_prompt_tokens(
    session: Session, candidates: list[Candidate], text: str, runtimes: RuntimeFactory | None = None
) -> dict[str, int]:
    """Tokens of ``text`` per candidate: the model's own tokenizer where cheap, else estimated.

    Cheap means a local model already loaded in the ``runtimes`` pool whose lock is free right
    now (tokenizing must not wait behind a generation).  Everything else gets
    ``pricing.estimate_tokens`` (characters / 4, rounded up).
    """
    estimate = estimate_tokens(text)
    counts = {c.name: estimate for c in candidates}
    if runtimes is None:
        return counts
    pool = runtimes.pool
    loaded = set(pool.loaded)
    for c in candidates:
        if not c.is_local or c.name not in loaded:
            continue
        entry = session.exec(select(ModelEntry).where(ModelEntry.name == c.name)).first()
        if entry is None or not entry.gguf_path:
            continue
        try:  # (an eviction in between would reload it: rare, and only costs time)
            model = pool.get(c.name, entry.gguf_path, entry.ram_bytes or 0, entry.context_length)
            if model.lock.acquire(blocking=False):
                try:
                    counts[c.name] = len(
                        model.llama.tokenize(text.encode(), add_bos=False, special=True)
                    )
                finally:
                    model.lock.release()
        except Exception as exc:  # a tokenizer hiccup must not fail routing: keep the estimate
            log.warning("token count for %s fell back to the estimate: %s", c.name, exc)
    return counts


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


__all__ = [
    "Candidate",
    "CandidateVerdict",
    "Decision",
    "MachineLimits",
    "count_prompt_tokens",
    "decide",
    "explain",
    "load_candidates",
    "quality_for",
    "route",
]
