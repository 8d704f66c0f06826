"""Admitting a model call against its team's budget: what the cascade asks, the platform answers.

Checking "spent < budget" and then calling lets every request in flight pass the same check, so
concurrent requests overshoot a budget by as many calls as run at once.  Instead the cascade asks
a ``BudgetGuard`` to *reserve* the call's maximum cost before the first attempt (the guard
refuses when the team's spend plus the reservations of calls in flight has reached its budget),
and settles the reservation in the same transaction as the call's last usage row: a team's spend
plus its reservations never counts a call twice or not at all, and concurrent requests overshoot
a budget by at most one request's maximum.

Teams and budgets are the platform's; the registry only knows what a call can cost at most
(``max_cost``), and runs the settling write the guard hands back (a ``Hold``), renewing it while a
long call (a stream) lives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlmodel import Session

from .candidates import Candidate, MachineLimits, expected_cost

log = logging.getLogger(__name__)

Settle = Callable[[Session], None]
"""A write that settles a reservation, run in the transaction of the call's last usage row."""


class Hold:
    """One call's reservation: settled by calling it, kept alive by ``keep`` while the call lives.

    A reservation lapses ``ttl_s`` after it was made or last renewed, so that a process killed
    mid-call does not hold its team's budget forever.  A call that outlives that (a stream of
    hours) calls ``keep`` as it goes, as an event stream renews its slot's lease: otherwise its
    reservation would lapse mid-stream and a concurrent spender could overshoot the budget.
    """

    def __init__(self, settle: Settle, renew: Callable[[], None], ttl_s: float) -> None:
        self.settle, self.renew, self.ttl_s = settle, renew, ttl_s
        self._renewed = time.monotonic()

    def __call__(self, session: Session) -> None:
        self.settle(session)

    def keep(self) -> None:
        """Renew once a third of the lifetime has passed since the last renewal, else no I/O.

        Blocking (a database write): call it off the event loop.  A failed renewal is logged,
        not raised: the call goes on, its reservation counts until it lapses.
        """
        now = time.monotonic()
        if now - self._renewed < self.ttl_s / 3:
            return
        self._renewed = now
        try:
            self.renew()
        except Exception as exc:
            log.warning("budget reservation not renewed: %s", exc)


class BudgetGuard(Protocol):
    def reserve(self, *, team_id: int, request_id: str, job_id: str | None, node: str | None,
                model: str, max_cost_usd: float) -> Hold | None:
        """Reserve ``max_cost_usd`` for this call (``model`` first), or raise when over budget.

        Returns the hold (settle it with the last usage row), or None when nothing was
        reserved (no budget to hold).
        """
        ...


def max_cost(candidates: Sequence[Candidate], prompt_tokens: int, max_tokens: int,
             limits: MachineLimits) -> float:
    """The most a call that may try each of ``candidates`` in turn can cost, in USD.

    Each attempt is priced at the full ``max_tokens`` (routing already dropped candidates whose
    context cannot hold prompt + max_tokens, so that is the cap): by the token for remote
    models, at the measured speed for local ones.  A cascade may try every candidate, so the
    maximum is their sum; a stream or a pinned model tries one.
    """
    return sum(expected_cost(c, prompt_tokens, max_tokens, limits) for c in candidates)


__all__ = ["BudgetGuard", "Hold", "Settle", "max_cost"]
