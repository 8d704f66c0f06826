"""The entries that can win a decision, found once per kind of request, not once per request.

``CatalogueIndex.decide`` priced every catalogue entry on every request: a dozen numpy operations
over 1,000 entries took 55-75 microseconds at p50, about 190 at p99 (#15's target: p99 <= 50).
Most of those entries can never win.  Entry ``i`` *dominates* ``j`` when, whatever the prompt's
length and the request's max tokens, ``i`` is adequate whenever ``j`` is and costs no more, and
``i`` wins a tie in cost (higher quality, then the name: ``decide``'s order).  Then ``j`` is never
the pick: this holds for every prompt length, so dominated entries are dropped once per *kind of
request* (needed capabilities, machine limits, task kind, whether unscored models may serve,
whether a latency budget applies), and a request prices only the rest: the *front*, tens of
entries where the catalogue has a thousand (``bench/router_latency.py``'s 1,000 random entries:
37-54 for its three kinds, 104 for chat with a latency budget).

Why "whatever the prompt's length" holds: each price and each limit is a monotone function of
one entry's columns, with the same floating-point operations for both entries.

- Remote, by the token: ``(tokens * price_in + out * price_out) / 1e6`` with ``out =
  min(max_tokens, L)`` (``L`` the measured answer length, infinite when unmeasured): no more
  for any ``tokens`` and ``max_tokens`` when ``price_in``, ``price_out`` and ``L`` are no more.
  IEEE rounding is monotone, so "no more" holds for the computed floats too, not only in theory.
- Local, by machine time: ``(tokens / prefill + out / tps) * rate``: no more when both speeds
  are no less and ``L`` is no more.  Local and remote prices are different functions, so an
  entry only dominates entries priced like itself.
- Adequacy: the window (``tokens > window - max_tokens`` fails), the quality bar (no bar can
  fail ``i`` and pass ``j`` when ``i``'s score is no lower; an unscored entry passes every bar
  when allowed) and, when the request has a latency budget, the expected latency (no more when
  the speeds are no less; a remote without a measured speed has none and never fails it).

A NaN anywhere (an unpriced remote) compares false: such an entry dominates nothing and is
never dropped, so the request sees it and ``decide`` handles it as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..pricing import PER_MILLION

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
_CACHED = 64  # per-request columns kept per front: requests repeat a few max tokens and bars
_BLOCK = 256  # rows of the pairwise comparison at a time: 256 x 10,000 booleans per dimension


@dataclass(frozen=True)
class Front:
    """The undominated entries of one kind of request: local ones, then remote ones.

    ``at`` holds their catalogue positions; the other columns are the catalogue's, taken at
    ``at``.  Each family is in ``decide``'s tie order (higher quality, then the name), so the
    first entry of least cost in a family is that family's pick, and ``rank`` (the position in
    the tie order of both) settles a tie between the two families' picks.
    """

    at: Ints
    n_local: int
    rank: Ints
    price_in: Floats
    price_out: Floats
    tps: Floats
    prefill: Floats
    lengths: Floats  # the measured answer length, rounded and at least 1; inf when unmeasured
    window: Floats  # the effective window; NaN when none (never too small)
    quality: Floats  # NaN when unscored
    local_prefill: Floats = field(init=False, repr=False)
    remote_price_in: Floats = field(init=False, repr=False)
    _by_request: dict[tuple[int, float], _Priced] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "local_prefill", self.prefill[:self.n_local])
        object.__setattr__(self, "remote_price_in", self.price_in[self.n_local:])

    def __len__(self) -> int:
        return len(self.at)

    def pick(self, tokens: float, max_tokens: int, bar: float, budget_s: float | None,
             rate: float) -> tuple[int, float, float | None] | None:
        """``(front position, expected cost, expected latency)`` of ``decide``'s pick, or None.

        None when none is adequate or an adequate entry has no price (``decide`` then decides).

        ``decide``'s arithmetic, operation for operation, on the front's entries only: the same
        floats.  ``rate`` is the machine's cost per second.
        """
        n, nl = len(self.at), self.n_local
        if not n:
            return None
        priced = self._priced(max_tokens, bar)
        t = np.float64(tokens)
        cost = np.empty(n)
        local, remote = cost[:nl], cost[nl:]
        latency: Floats | None = None
        if budget_s is not None:  # every entry's latency (NaN: a remote with no measured speed)
            latency = np.divide(t, self.prefill)
            latency += priced.out_over_tps
            np.multiply(latency[:nl], rate, out=local)
        elif nl:
            seconds = np.divide(t, self.local_prefill)
            seconds += priced.local_out_over_tps
            np.multiply(seconds, rate, out=local)
        if nl < n:
            np.multiply(t, self.remote_price_in, out=remote)
            remote += priced.remote_out_price
            remote /= PER_MILLION
        fail = np.greater(t, priced.longest)
        if latency is not None and budget_s is not None:
            fail |= latency > budget_s
        np.putmask(cost, fail, np.inf)
        best = int(local.argmin()) if nl else -1
        if nl < n:
            k = nl + int(remote.argmin())  # a NaN (no price) if any: decide decides then
            if cost[k] != cost[k]:
                return None
            if best < 0 or cost[k] < cost[best] or (cost[k] == cost[best]
                                                    and self.rank[k] < self.rank[best]):
                best = k
        value = float(cost[best])
        if value == np.inf or value != value:  # none adequate, or one without a price
            return None
        if latency is not None:
            seconds_ = float(latency[best])
        else:  # the same two operations on one entry (numpy's floats: a zero speed is inf)
            seconds_ = float(t / self.prefill[best] + priced.out_over_tps[best])
        return best, value, None if seconds_ != seconds_ else seconds_

    def _priced(self, max_tokens: int, bar: float) -> _Priced:
        """The request's max tokens and bar applied to the front (requests repeat a few)."""
        key = (max_tokens, bar)
        got = self._by_request.get(key)
        if got is None:
            out = np.minimum(self.lengths, float(max_tokens))
            out_over_tps, nl = out / self.tps, self.n_local
            # under the bar: no prompt fits (unscored, NaN, passes: only allowed ones are here);
            # no window (NaN): every prompt fits
            longest = np.where(self.quality < bar, -np.inf, self.window - max_tokens)
            got = _Priced(out_over_tps, out_over_tps[:nl], (out * self.price_out)[nl:], longest)
            if len(self._by_request) >= _CACHED:
                self._by_request.clear()
            self._by_request[key] = got
        return got


@dataclass(frozen=True)
class _Priced:
    out_over_tps: Floats  # the expected answer's decode time
    local_out_over_tps: Floats  # the same, of the local entries
    remote_out_price: Floats  # the expected answer's price (per million tokens), remote entries
    longest: Floats  # the most prompt tokens an entry takes (-inf: under the bar; NaN: any)


@dataclass(frozen=True)
class Columns:
    """The catalogue's columns for one kind of request, as ``CatalogueIndex`` computes them."""

    eligible: Bools  # passes the request-independent checks (capabilities, health, RAM, scored)
    local: Bools
    price_in: Floats
    price_out: Floats
    tps: Floats  # local entries without a measurement at the assumed speed
    prefill: Floats  # the decode speed times the prefill factor where unmeasured
    mean_out: Floats
    window: Floats
    quality: Floats
    name_rank: Ints


def answer_lengths(mean_out: Floats) -> Floats:
    """``decide``'s ``max(1, round(mean))``, inf where unmeasured.

    So ``min(L, max_tokens)`` is the expected answer length for any max.
    """
    return np.where(np.isnan(mean_out), np.inf, np.maximum(1.0, np.round(mean_out)))


def tie_order(quality: Floats, name_rank: Ints, among: Ints) -> Ints:
    """``among`` in ``decide``'s tie order: higher quality first (unscored as -1), then name."""
    q = quality[among]
    return among[np.lexsort((name_rank[among], -np.where(np.isnan(q), -1.0, q)))]


def build_front(columns: Columns, *, allow_unscored: bool, with_latency: bool) -> Front:
    """The entries of ``columns.eligible`` that no other eligible entry dominates."""
    order = tie_order(columns.quality, columns.name_rank, np.flatnonzero(columns.eligible))
    rank = np.empty(len(columns.eligible), dtype=np.int64)
    rank[order] = np.arange(len(order))
    lengths = answer_lengths(columns.mean_out)
    kept: list[Ints] = []
    for family in (True, False):  # local, then remote: each priced its own way
        at = order[columns.local[order] == family]
        if len(at):
            dims = _better_or_equal(columns, lengths, at, family, allow_unscored, with_latency)
            at = at[~_dominated(dims)]
        kept.append(at)
    at = np.concatenate(kept)
    return Front(at=at, n_local=len(kept[0]), rank=rank[at], price_in=columns.price_in[at],
                 price_out=columns.price_out[at], tps=columns.tps[at],
                 prefill=columns.prefill[at], lengths=lengths[at], window=columns.window[at],
                 quality=columns.quality[at])


def _better_or_equal(columns: Columns, lengths: Floats, at: Ints, local: bool,
                     allow_unscored: bool, with_latency: bool) -> list[tuple[Floats, bool]]:
    """The dimensions of dominance, each as (values, higher is better); NaN never compares."""
    window = columns.window[at]
    quality = columns.quality[at]
    if allow_unscored:  # an unscored entry passes every bar
        quality = np.where(np.isnan(quality), np.inf, quality)
    dims: list[tuple[Floats, bool]] = [
        (np.where(np.isnan(window), np.inf, window), True),
        (quality, True),
        (lengths[at], False),
    ]
    tps, prefill = columns.tps[at], columns.prefill[at]
    if local:
        dims += [(tps, True), (prefill, True)]
    else:
        dims += [(columns.price_in[at], False), (columns.price_out[at], False)]
        if with_latency:  # no measured speed: no expected latency, never over a budget
            unmeasured = np.isnan(tps) | np.isnan(prefill)
            dims += [(np.where(unmeasured, np.inf, tps), True),
                     (np.where(unmeasured, np.inf, prefill), True)]
    return dims


def _dominated(dims: list[tuple[Floats, bool]]) -> Bools:
    """Which entries (in tie order) an earlier entry is at least as good as in every dimension.

    Earlier in the tie order, that entry also wins a tie in cost.
    """
    n = len(dims[0][0])
    out = np.zeros(n, dtype=np.bool_)
    for start in range(0, n, _BLOCK):
        j = slice(start, min(n, start + _BLOCK))
        # rows: the dominated candidate j; columns: a possible dominator i, which must be earlier
        beats = np.tril(np.ones((j.stop - j.start, n), dtype=np.bool_), k=start - 1)
        for values, higher in dims:
            mine, theirs = values[j, None], values[None, :]
            beats &= (theirs >= mine) if higher else (theirs <= mine)
        out[j] = beats.any(axis=1)
    return out


__all__ = ["Columns", "Front", "answer_lengths", "build_front", "tie_order"]
