"""The worker process: the ``run_job`` and ``run_turn`` tasks, per-process resources, reconciler.

Each worker child builds its own engine, runtimes (loaded models) and event bus after the fork;
the main process runs the reconciler, which re-enqueues jobs no worker is working on (queued
after a broker loss, or running under a lease that a dead worker stopped renewing), and probes
remote models every ``health_check_interval_s`` so routing follows their health; beside it the
``Retrainer`` trains a new routing predictor when enough new evidence arrived (``retrain``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery, Task
from celery.signals import worker_ready, worker_shutdown
from modelyard_registry.db import session_scope
from modelyard_registry.remote_models import refresh_health
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings

from ..budget import TeamBudgets
from ..products import all_products
from . import store
from .celery_app import RUN_JOB, RUN_TURN, broker_url, enqueue, make_celery, send_turn
from .events import EventBus
from .fence import LeaseFence
from .retrain import Retrainer
from .runner import JobRunner
from .turn import Turn
from .wake import Waker

log = logging.getLogger(__name__)


def build_runner(settings: Settings) -> JobRunner:
    url = settings.effective_database_url

    def sessions() -> Any:
        return session_scope(url)

    fence = LeaseFence()
    budgets = TeamBudgets(sessions, settings.budget_reservation_ttl_s)
    cascade = Cascade(sessions, settings, RuntimeFactory(settings), budget=budgets, fence=fence)
    return JobRunner(settings, sessions, cascade, EventBus(settings.redis_url), all_products(),
                     fence)


def retry(app: Celery, job_id: str, retries: int) -> None:
    """The delayed message of a job requeued after a transient failure (backoff 2, 4, 8 s ...)."""
    enqueue(app, job_id, countdown=2 ** (retries + 1), retries=retries + 1)


def reconcile_once(app: Celery, settings: Settings) -> list[str]:
    with session_scope(settings.effective_database_url) as session:
        stale = store.take_stale(session, requeue_after_s=settings.requeue_after_s)
    for job_id in stale:
        enqueue(app, job_id)
    if stale:
        log.info("reconciler re-enqueued %d job(s): %s", len(stale), ", ".join(stale))
    return stale


class Reconciler:
    def __init__(self, app: Celery, settings: Settings) -> None:
        self._stop = threading.Event()
        self._app, self._settings = app, settings
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        interval = self._settings.health_check_interval_s
        next_probe = time.monotonic() + interval
        while not self._stop.wait(self._settings.reconcile_interval_s):
            try:
                reconcile_once(self._app, self._settings)
            except Exception as exc:  # the database or broker is away; next round retries
                log.warning("reconciler: %s", exc)
            if interval and time.monotonic() >= next_probe:
                next_probe = time.monotonic() + interval
                self._probe_remotes()

    def _probe_remotes(self) -> None:
        """Re-probe remote models, so one the cascade marked unhealthy comes back by itself."""
        try:
            with session_scope(self._settings.effective_database_url) as session:
                for name, (ok, error) in refresh_health(session, self._settings).items():
                    if not ok:
                        log.warning("health: %s is unhealthy (%s)", name, error)
        except Exception as exc:
            log.warning("health probe: %s", exc)


def make_worker_app(settings: Settings) -> Celery:
    app = make_celery(settings)
    state: dict[str, tuple[Turn, Waker]] = {}

    def turn() -> tuple[Turn, Waker]:
        if "turn" not in state:  # built lazily in the child that runs the task
            waker = Waker(broker_url(settings), lambda: send_turn(app))
            state["turn"] = (Turn(build_runner(settings), settings.worker_turn_s, waker.wake,
                                  lambda job_id, retries: retry(app, job_id, retries)), waker)
        return state["turn"]

    @app.task(name=RUN_JOB, bind=True)  # type: ignore[untyped-decorator]
    def run_job(self: Task, job_id: str) -> str:
        """A job's own message (a retry, the reconciler's), then more queued jobs."""
        outcomes = turn()[0].take(job_id, self.request.retries)
        log.info("job %s: %s", job_id, "; ".join(outcomes))
        return outcomes[0]

    @app.task(name=RUN_TURN)  # type: ignore[untyped-decorator]
    def run_turn() -> str:
        """A wake-up (``wake``): run the queued jobs, fairest first, while any wait."""
        runs, waker = turn()
        try:
            waker.taken()  # before the first look at the queue: a later job sends a new one
        except Exception as exc:  # Redis blip: the key expires by itself
            log.warning("could not clear the wake-up key: %s", exc)
        outcomes = runs.take()
        log.info("turn: %d job(s)", sum(1 for o in outcomes if o == "succeeded"))
        return f"{len(outcomes)} run(s)"

    reconciler = Reconciler(app, settings)
    retrainer = Retrainer(settings)

    @worker_ready.connect(weak=False)
    def _start_reconciler(**_: Any) -> None:
        reconciler.start()
        retrainer.start()

    @worker_shutdown.connect(weak=False)
    def _stop_reconciler(**_: Any) -> None:
        reconciler.stop()
        retrainer.stop()

    return app
