"""The process's predictor: the active trained version, loaded once, reloaded when a newer appears.

Versions and their artefacts live in the database (``artefacts``), so every API process and
worker sharing it serves the same version without a shared volume.  Routing asks
``ActivePredictor.predictions`` on every request, so the check for a newer version is
rate-limited: at most one indexed query every ``route_predictor_check_s`` seconds, never one per
request, and the artefact itself is read only when the version changed.  With no trained version
(a fresh install) it answers None after that cheap check and the decision falls back to the
per-kind scores, so prediction costs nothing until it exists.
A version whose files cannot be loaded (deleted, or an embedder this install lacks) is logged
once and skipped: routing on per-kind scores beats failing every request.

A cost budget (``TaskSpec.max_cost_ratio``, else ``Settings.route_max_cost_ratio``) is served
through the version's cross-validated cost/quality curve: ``tuning.mix_for_budget`` picks the two
utility-rule lambdas around the budget and the share of requests priced with the richer one, and
``BudgetMix.lam_for`` assigns this request by a hash of its text (the same request always gets
the same model).  Without a curve (too little evidence when the version was trained) the budget
cannot be kept knowingly, and ``min_quality`` decides as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from sqlmodel import Session

from ..settings import Settings
from ..taskspec import TaskSpec
from .artefacts import active_version, load_version
from .decide import DecisionRule, policy_rule
from .outcomes import Prediction
from .policy import BudgetMix
from .predictor import Predictor
from .tuning import CurvePoint, curve_from_rows, mix_for_budget

log = logging.getLogger(__name__)


class ActivePredictor:
    """Holds the newest trained predictor of this home/database for one process."""

    def __init__(self, settings: Settings, *, check_interval_s: float | None = None) -> None:
        self.settings = settings
        self.check_interval_s = (settings.route_predictor_check_s if check_interval_s is None
                                 else check_interval_s)
        self.version: str | None = None
        self._predictor: Predictor | None = None
        self._curve: list[CurvePoint] = []
        self._mixes: dict[float, BudgetMix | None] = {}
        self._checked_at = float("-inf")
        self._failed: set[str] = set()
        self._lock = threading.Lock()

    def current(self, session: Session) -> Predictor | None:
        """The loaded predictor, after checking for a newer version if the interval passed."""
        now = time.monotonic()
        if now - self._checked_at < self.check_interval_s:
            return self._predictor
        with self._lock:
            if now - self._checked_at >= self.check_interval_s:
                self._refresh(session)
                self._checked_at = time.monotonic()
        return self._predictor

    def _refresh(self, session: Session) -> None:
        row = active_version(session)
        if row is None or row.version == self.version or row.version in self._failed:
            return
        try:
            predictor = load_version(session, self.settings, row.version)
        except Exception as exc:  # keep routing on what we have
            self._failed.add(row.version)
            log.warning("routing predictor %s not loaded (%s); keeping %s", row.version, exc,
                        self.version or "per-kind scores")
            return
        self._predictor, self.version = predictor, row.version
        self._curve, self._mixes = curve_from_rows(row.budget_curve), {}
        log.info("routing predictor %s loaded (kinds: %s)", row.version,
                 ", ".join(predictor.kinds))

    def predictions(
        self, session: Session, kind: str, text: str, models: Sequence[str]
    ) -> dict[str, Prediction] | None:
        """Per-model predictions for this request, or None when no predictor covers ``kind``."""
        predictor = self.current(session)
        if predictor is None or kind not in predictor.kinds:
            return None
        return predictor.predict(kind, text, models) or None

    def rule(self, spec: TaskSpec, text: str) -> DecisionRule:
        """The request's rule: its cost budget where one applies and can be served.

        Else the rule ``min_quality`` maps to (see ``routing.policy``).
        """
        budget = spec.max_cost_ratio
        if budget is None:
            budget = self.settings.route_max_cost_ratio
        if budget is not None:
            mix = self._mix(budget)
            if mix is not None:
                lam = mix.lam_for(text)
                return DecisionRule(name=f"cost budget {budget:g} (lambda {lam:g})",
                                    threshold=0.0, lam=lam)
        return policy_rule(spec.min_quality)

    def _mix(self, budget: float) -> BudgetMix | None:
        mixes = self._mixes  # swapped whole on reload: a stale read is a whole old dict
        try:
            return mixes[budget]  # one read: another thread may clear the memo meanwhile
        except KeyError:
            pass
        mix = mix_for_budget(self._curve, budget)
        if len(mixes) > 256:  # budgets come from requests: keep the memo bounded
            mixes.clear()
        mixes[budget] = mix
        return mix


__all__ = ["ActivePredictor"]
