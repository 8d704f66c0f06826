"""The catalogue as columns, built once per change, so a decision is a few array operations.

``decide`` walks the catalogue in Python: about a microsecond per entry, a millisecond at 1,000
entries, on every request.  The catalogue changes a few times a day, so ``CatalogueIndex`` turns
the snapshot into numpy columns once (prices, speeds, windows, RAM, health, a capability bit
mask, scores and answer lengths per kind) and ``CatalogueIndex.decide`` computes expected cost,
latency and adequacy for every entry at once: tens of microseconds at 1,000 entries.

Most entries of a large catalogue can never be the pick of a given kind of request: another
entry is adequate whenever they are and never dearer.  ``routing.front`` drops them once per kind
of request and catalogue change, so an unpinned request with one prompt-token count prices only
the rest (the front: tens of entries of 1,000; p50 37 -> 18 microseconds, #15); every entry's
columns are computed only when the cascade order or an explanation is read.

The vectorised path answers the common case: no per-request predictions and at least one
adequate candidate.  It repeats ``decide``'s arithmetic operation for operation (float64, same
order, ``round`` half to even), so both pick the same model; every other case (predictions,
nothing adequate, a pinned name not in the catalogue) runs ``decide`` itself.  The verdicts of
every entry are built only when someone reads them (``Decision.candidates``: explain), by
``decide`` too, so an explanation reads exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar, overload

import numpy as np
import numpy.typing as npt

from ..catalog import Capability
from ..pricing import PER_MILLION, SECONDS_PER_HOUR
from ..taskspec import TaskKind, TaskSpec
from .candidates import Candidate, MachineLimits
from .decide import DecisionRule, decide
from .front import Columns, Front, answer_lengths, build_front
from .outcomes import Prediction
from .verdicts import CandidateVerdict, Decision, Row

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
K = TypeVar("K")
V = TypeVar("V")


def _column(values: Sequence[float | int | None], *, zero_is_none: bool = False) -> Floats:
    """Floats with NaN for None (and for 0 where ``decide`` tests the value with ``or``)."""
    out = np.array([np.nan if v is None or (zero_is_none and not v) else float(v)
                    for v in values], dtype=np.float64)
    return out


class CatalogueIndex:
    """Columns of one catalogue snapshot; immutable, shared read-only between threads."""

    def __init__(self, candidates: list[Candidate], *, loop_below: int = 32) -> None:
        """Columns of ``candidates``; catalogues under ``loop_below`` entries use the loop.

        Below a few dozen entries ``decide``'s loop is faster than numpy's fixed cost per array
        operation (measured: 37 vs 62 microseconds at 10 entries, 226 vs 65 at 100).
        """
        self.candidates = candidates
        self.loop_below = loop_below
        self.names = [c.name for c in candidates]
        self.position = {name: i for i, name in enumerate(self.names)}
        n = len(candidates)
        rank = sorted(range(n), key=lambda i: self.names[i])
        self.name_rank: Ints = np.empty(n, dtype=np.int64)
        self.name_rank[rank] = np.arange(n, dtype=np.int64)
        self.local: Bools = np.array([c.is_local for c in candidates], dtype=np.bool_)
        self.price_in = _column([c.price_in for c in candidates])
        self.price_out = _column([c.price_out for c in candidates])
        self.tps = _column([c.tokens_per_s for c in candidates], zero_is_none=True)
        self.prefill = _column([c.prefill_tokens_per_s for c in candidates], zero_is_none=True)
        window = _column([c.context_length for c in candidates])
        self.window = window
        self.window_unset: Bools = np.array([not c.context_length for c in candidates],
                                            dtype=np.bool_)
        self.ram = _column([c.ram_bytes for c in candidates])
        self.blocked: Bools = np.array(
            [not c.enabled or c.health == "unhealthy" or c.embeddings_only for c in candidates],
            dtype=np.bool_)
        self._bits = {cap.value: 1 << i for i, cap in enumerate(Capability)}
        self.caps: Ints = np.array(
            [sum(self._bits.get(cap, 0) for cap in c.capabilities) for c in candidates],
            dtype=np.int64)
        kinds = sorted({k for c in candidates for k in (*c.scores, *c.output_tokens)})
        self.quality = {k: _column([c.scores.get(k) for c in candidates]) for k in kinds}
        self.quality[TaskKind.chat.value] = _column([c.mean_score for c in candidates])
        self.lengths = {k: _column([c.output_tokens.get(k) for c in candidates]) for k in kinds}
        self.lengths[TaskKind.chat.value] = _column(
            [sum(c.output_tokens.values()) / len(c.output_tokens) if c.output_tokens else None
             for c in candidates])
        self._none = np.full(n, np.nan)
        self._by_limits: dict[tuple[int, MachineLimits], tuple[Bools, Floats, Floats]] = {}
        self._by_kind: dict[tuple[str, int, MachineLimits], tuple[Floats, Floats, Floats]] = {}
        self._by_bar: dict[tuple[str, float, bool], Bools] = {}
        self._fronts: dict[tuple[bool, bool, MachineLimits, str, bool, bool], Front] = {}

    def __len__(self) -> int:
        return len(self.candidates)

    def decide(
        self,
        spec: TaskSpec,
        prompt_tokens: Mapping[str, int] | int,
        limits: MachineLimits,
        predictions: Mapping[str, Prediction] | None = None,
        rule: DecisionRule | None = None,
    ) -> Decision:
        """``decide`` over this snapshot: the same decision, vectorised where that is safe."""
        pinned = spec.pinned_model
        if (predictions or len(self.candidates) < self.loop_below
                or (pinned is not None and pinned not in self.position)):
            return self._loop(spec, prompt_tokens, limits, predictions, rule)
        tokens = self._tokens(prompt_tokens)
        if tokens is None:
            return self._loop(spec, prompt_tokens, limits, predictions, rule)
        if pinned is None and isinstance(tokens, float):  # priced on the front only
            front = self._front(spec, limits)
            picked = front.pick(tokens, spec.max_output_tokens, spec.min_quality,
                                spec.latency_budget_s,
                                limits.machine_cost_per_hour / SECONDS_PER_HOUR)
            if picked is None:  # nothing adequate, the rare path: decide explains every candidate
                return self._loop(spec, prompt_tokens, limits, predictions, rule)
            k, price, seconds = picked
            ranked = _Ranked(self, spec, int(front.at[k]),
                             lambda: self._columns(spec, tokens, limits)[:4],
                             (_value(front.quality, k), price, seconds))
            return self._conclude(spec, prompt_tokens, limits, rule, ranked)
        masked, quality, cost, latency, fail = self._columns(spec, tokens, limits)
        if pinned is not None:
            at = self.position[pinned]
            picks = [] if fail[at] else [at]
        else:
            best = masked.min()
            picks = [] if best == np.inf else np.flatnonzero(masked == best).tolist()
        if not picks:  # nothing adequate, the rare path: decide explains every candidate
            return self._loop(spec, prompt_tokens, limits, predictions, rule)
        if len(picks) > 1:  # equal cost: higher quality, then the name (decide's rank_key)
            picks.sort(key=lambda i: (-(q if (q := float(quality[i])) == q else -1.0),
                                      self.names[i]))
        at = picks[0]
        ranked = _Ranked(self, spec, at, lambda: (masked, quality, cost, latency),
                         (_value(quality, at), float(cost[at]), _value(latency, at)))
        return self._conclude(spec, prompt_tokens, limits, rule, ranked)

    def _columns(self, spec: TaskSpec, tokens: Floats | float, limits: MachineLimits
                 ) -> tuple[Floats, Floats, Floats, Floats, Bools]:
        """Every entry's cost (inf where not adequate), quality, cost, latency and failure."""
        kind = str(spec.kind)
        out_tokens = spec.max_output_tokens
        static_fail, window, prefill = self._limits_columns(spec, limits)
        quality, out_over_tps, out_price = self._kind_columns(kind, out_tokens, limits)
        # decide's arithmetic, operation for operation (NaN: a remote with no measured speed),
        # in place where it can be: at 1,000 entries each temporary array costs microseconds
        latency = np.divide(tokens, prefill)
        latency += out_over_tps
        cost = np.multiply(tokens, self.price_in)
        cost += out_price
        cost /= PER_MILLION
        rate = limits.machine_cost_per_hour / SECONDS_PER_HOUR
        np.multiply(latency, rate, out=cost, where=self.local)
        fail = np.greater(tokens, window - out_tokens)  # tokens + max > window; NaN: no window
        fail |= static_fail
        if spec.latency_budget_s is not None:
            fail |= latency > spec.latency_budget_s
        if spec.pinned_model is None:
            fail |= self._quality_fail(kind, quality, spec.min_quality, spec.allow_unscored)
        return np.where(fail, np.inf, cost), quality, cost, latency, fail

    def _front(self, spec: TaskSpec, limits: MachineLimits) -> Front:
        """The front for this kind of request (``routing.front``), built once per catalogue.

        ``decide``'s pick, priced on the front only, is ``Front.pick``'s.
        """
        kind = str(spec.kind)
        with_latency = spec.latency_budget_s is not None
        key = (spec.needs_json_schema, spec.needs_tools, limits, kind, spec.allow_unscored,
               with_latency)
        got = self._fronts.get(key)
        if got is None:
            static_fail, window, prefill = self._limits_columns(spec, limits)
            quality = self.quality.get(kind, self._none)
            eligible = ~static_fail
            if not spec.allow_unscored:
                eligible &= ~np.isnan(quality)
            columns = Columns(eligible=eligible, local=self.local, price_in=self.price_in,
                              price_out=self.price_out, tps=self._tps(limits), prefill=prefill,
                              mean_out=self.lengths.get(kind, self._none), window=window,
                              quality=quality, name_rank=self.name_rank)
            got = build_front(columns, allow_unscored=spec.allow_unscored,
                              with_latency=with_latency)
            _remember(self._fronts, key, got)
        return got

    def _limits_columns(self, spec: TaskSpec, limits: MachineLimits
                        ) -> tuple[Bools, Floats, Floats]:
        """Hard-limit failures, effective windows and prefill speeds; cached per limits."""
        required = self._required(spec)
        key = (required, limits)
        got = self._by_limits.get(key)
        if got is None:
            local = self.local
            n_ctx = limits.n_ctx
            window = np.where(local & (self.window_unset | (self.window > n_ctx)),
                              float(n_ctx), self.window)
            fail = (self.blocked | ((self.caps & required) != required)
                    | (local & (self.ram > limits.ram_budget_bytes)))
            tps = self._tps(limits)
            prefill = np.where(np.isnan(self.prefill), tps * limits.prefill_factor,
                               self.prefill)
            got = (fail, window, prefill)
            _remember(self._by_limits, key, got)
        return got

    def _required(self, spec: TaskSpec) -> int:
        """The capability bits the request needs."""
        required = 0
        if spec.needs_json_schema:
            required |= self._bits[Capability.json_schema.value]
        if spec.needs_tools:
            required |= self._bits[Capability.tools.value]
        return required

    def _tps(self, limits: MachineLimits) -> Floats:
        """Decode speeds: local models without a measurement run at the assumed speed."""
        return np.where(self.local & np.isnan(self.tps), limits.unmeasured_tokens_per_s,
                        self.tps)

    def _kind_columns(self, kind: str, out_tokens: int, limits: MachineLimits
                      ) -> tuple[Floats, Floats, Floats]:
        """Quality, output time and output price per entry for a kind and a max; cached."""
        key = (kind, out_tokens, limits)
        got = self._by_kind.get(key)
        if got is None:
            out = np.minimum(answer_lengths(self.lengths.get(kind, self._none)),
                             float(out_tokens))
            got = (self.quality.get(kind, self._none), out / self._tps(limits),
                   out * self.price_out)
            _remember(self._by_kind, key, got)
        return got

    def _quality_fail(self, kind: str, quality: Floats, bar: float, allow_unscored: bool
                      ) -> Bools:
        key = (kind, bar, allow_unscored)
        got = self._by_bar.get(key)
        if got is None:
            got = quality < bar
            if not allow_unscored:
                got |= np.isnan(quality)
            _remember(self._by_bar, key, got)
        return got

    def _tokens(self, prompt_tokens: Mapping[str, int] | int) -> Floats | float | None:
        """One count, or a column of counts (a missing name gets the largest, as in decide)."""
        if isinstance(prompt_tokens, int):
            return None if prompt_tokens < 0 else float(prompt_tokens)
        if not prompt_tokens or min(prompt_tokens.values()) < 0:
            return None  # decide raises (negative) or uses 0: let it
        column = np.full(len(self.names), float(max(prompt_tokens.values())))
        position = self.position
        for name, count in prompt_tokens.items():
            i = position.get(name)
            if i is not None:
                column[i] = count
        return column

    def _loop(self, spec: TaskSpec, prompt_tokens: Mapping[str, int] | int,
              limits: MachineLimits, predictions: Mapping[str, Prediction] | None,
              rule: DecisionRule | None) -> Decision:
        tokens = prompt_tokens if isinstance(prompt_tokens, int) else dict(prompt_tokens)
        return decide(spec, tokens, self.candidates, limits, predictions, rule)

    def _conclude(self, spec: TaskSpec, prompt_tokens: Mapping[str, int] | int,
                  limits: MachineLimits, rule: DecisionRule | None, ranked: _Ranked
                  ) -> Decision:
        """The pick now; the cascade order and every other verdict only when read."""
        chosen = ranked[0]
        whole = _Whole(lambda: self._loop(spec, prompt_tokens, limits, None, rule), ranked)
        return Decision(str(spec.kind), spec.min_quality, chosen, f"{chosen.name}: {chosen.reason}",
                        whole, basis="score", rule="cheapest adequate",
                        threshold=spec.min_quality, predictions=None, order=ranked)


_CACHED = 64  # column sets kept per kind of key: requests repeat a few kinds, bars and limits


def _remember(cache: dict[K, V], key: K, value: V) -> None:
    if len(cache) >= _CACHED:
        cache.clear()
    cache[key] = value


def _value(column: Floats, i: int) -> float | None:
    x = float(column[i])
    return None if x != x else x


class _Ranked(Sequence[CandidateVerdict]):
    """The adequate candidates in the cascade's order, each verdict made on first read.

    The pick is known at once (with its quality, cost and latency); every entry's columns, and
    the order of the others (a sort of every adequate entry), are computed the first time
    anything past the pick, or the length, is asked for, and each verdict when it is read:
    making hundreds of verdicts would cost more than the decision.  Reasons are ``decide``'s,
    word for word.
    """

    def __init__(self, index: CatalogueIndex, spec: TaskSpec, first: int,
                 columns: Callable[[], tuple[Floats, Floats, Floats, Floats]],
                 picked: tuple[float | None, float, float | None]) -> None:
        """``columns``: every entry's (cost or inf where not adequate, quality, cost, latency)."""
        self._index = index
        self._spec = spec
        self._first = first
        self._compute = columns
        self._computed: tuple[Floats, Floats, Floats, Floats] | None = None
        self._picked = picked
        self._order: list[int] | None = None
        self._made: dict[int, CandidateVerdict] = {}

    def _columns(self) -> tuple[Floats, Floats, Floats, Floats]:
        """Every entry's columns, computed on first need and kept (a cascade reads them all)."""
        if self._computed is None:
            self._computed = self._compute()
        return self._computed

    def _positions(self) -> list[int]:
        if self._order is None:
            if self._spec.pinned_model is not None:
                self._order = [self._first]
            else:
                masked, quality, cost, _ = self._columns()
                adequate = np.flatnonzero(masked != np.inf)
                q = quality[adequate]
                keys = (self._index.name_rank[adequate], -np.where(np.isnan(q), -1.0, q),
                        cost[adequate])
                self._order = adequate[np.lexsort(keys)].tolist()
        return self._order

    def __len__(self) -> int:
        return len(self._positions())

    @overload
    def __getitem__(self, i: int) -> CandidateVerdict: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[CandidateVerdict]: ...
    def __getitem__(self, i: int | slice) -> CandidateVerdict | Sequence[CandidateVerdict]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i != 0:
            if i < 0:
                i += len(self)
            if not 0 <= i < len(self):
                raise IndexError(i)
        made = self._made.get(i)
        if made is None:
            made = self._made[i] = self._make(i)
        return made

    def __iter__(self) -> Iterator[CandidateVerdict]:
        yield self[0]
        for i in range(1, len(self)):
            yield self[i]

    def _make(self, i: int) -> CandidateVerdict:
        spec = self._spec
        if i > 0:  # decide's templates for an adequate candidate that was not picked
            at = self._positions()[i]
            c = self._index.candidates[at]
            _, quality, costs, latency = self._columns()
            q, cost = _value(quality, at), float(costs[at])
            cheapest = self[0].expected_cost_usd
            v = CandidateVerdict(c.name, c.backend, q, cost, _value(latency, at),
                                 "adequate", None, True, None, q)
            v._failures = ([("adequate (unscored, allowed) but ${:.3g} expected > ${:.3g}",
                             (cost, cheapest))] if q is None else
                           [("adequate ({} {:.2f} >= {:.2f}) but ${:.3g} expected > ${:.3g}",
                             ("quality", q, spec.min_quality, cost, cheapest))])
            return v
        c = self._index.candidates[self._first]
        q, cost, latency_s = self._picked
        if spec.pinned_model is not None:
            reason = "pinned by the caller (quality bar skipped)"
        elif q is None:
            reason = f"cheapest adequate: ${cost:.3g} expected, unscored, allowed"
        else:
            reason = (f"cheapest adequate: ${cost:.3g} expected, "
                      f"quality {q:.2f} >= {spec.min_quality:.2f}")
        return CandidateVerdict(c.name, c.backend, q, cost, latency_s, "chosen", reason, True,
                                None, q)


class _Whole(Sequence[CandidateVerdict | Row]):
    """Every candidate's verdict in catalogue order, from ``decide`` itself on first read.

    Only an explanation reads them; the verdicts already handed out (the pick, the cascade
    order) take their places, so the two views never disagree.
    """

    def __init__(self, full: Callable[[], Decision], ranked: _Ranked) -> None:
        self._full = full
        self._ranked = ranked
        self._items: list[CandidateVerdict | Row] | None = None

    def _list(self) -> list[CandidateVerdict | Row]:
        if self._items is None:
            made = {v.name: v for v in self._ranked._made.values()}
            self._items = [made.get(v.name, v) for v in self._full().candidates]
        return self._items

    @overload
    def __getitem__(self, i: int) -> CandidateVerdict | Row: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[CandidateVerdict | Row]: ...
    def __getitem__(self, i: int | slice
                    ) -> CandidateVerdict | Row | Sequence[CandidateVerdict | Row]:
        return self._list()[i]

    def __len__(self) -> int:
        return len(self._list())

    def __iter__(self) -> Iterator[CandidateVerdict | Row]:
        return iter(self._list())


__all__ = ["CatalogueIndex"]
