"""The worker's automatic retrain: a new routing predictor once enough new evidence arrived.

Every ``CHECK_S`` seconds the worker's main process counts the outcomes stored since the active
version (one cheap count query); at ``route_retrain_min_new`` it trains a new version, which
every API and worker process picks up at its next predictor check.  Several workers may run this
loop: a Redis lock makes one of them train, and a retrain that raced another only adds a version.
"""

from __future__ import annotations

import logging
import threading

import redis
from modelyard_registry.db import session_scope
from modelyard_registry.routing.training import retrain_if_due
from modelyard_registry.settings import Settings

log = logging.getLogger(__name__)

CHECK_S = 60.0
LOCK = "modelyard:route-train"


def retrain_once(settings: Settings) -> str | None:
    """Train if due (under the cluster-wide lock when Redis is configured); the new version."""
    if settings.route_retrain_min_new <= 0:
        return None
    lock = None
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url)
        lock = client.lock(LOCK, timeout=3600, blocking=False)
        if not lock.acquire():
            return None
    try:
        with session_scope(settings.effective_database_url) as session:
            row = retrain_if_due(session, settings)
    finally:
        if lock is not None:
            lock.release()
    if row is not None:
        log.info("routing: trained %s on %d outcomes (dev %s)", row.version, row.outcomes,
                 row.metrics)
        return row.version
    return None


class Retrainer:
    """A daemon thread running ``retrain_once`` every ``interval_s`` until stopped."""

    def __init__(self, settings: Settings, interval_s: float = CHECK_S) -> None:
        self._settings, self._interval_s = settings, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="route-retrain", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                retrain_once(self._settings)
            except Exception as exc:  # no evidence store, a bad row: next round retries
                log.warning("routing retrain: %s", exc)
