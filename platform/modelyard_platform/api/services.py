"""The long-lived objects one API process shares between requests, built once by the app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property

from celery import Celery
from fastapi.concurrency import run_in_threadpool
from modelyard_registry.catalog_cache import CatalogueCache
from modelyard_registry.db import get_engine, session_scope
from modelyard_registry.group_commit import GroupCommitter
from modelyard_registry.replica_report import publish
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings
from modelyard_registry.watch import ChangeWatcher
from sqlmodel import Session

from ..budget import TeamBudgets
from ..budget_cache import BudgetFreeTeams
from ..jobs.batcher import Batcher
from ..jobs.celery_app import broker_url, make_celery, send_turn
from ..jobs.events import EventBus
from ..jobs.wake import Waker
from ..keycache import KeyCache
from ..metrics import Metrics
from ..products import ProductLike, all_products
from .limits import RateLimiter
from .offload import Offload
from .stream_slots import StreamSlots


@dataclass
class Services:
    settings: Settings
    products: dict[str, ProductLike] = field(default_factory=all_products)

    def __post_init__(self) -> None:
        self.db_url = self.settings.effective_database_url
        get_engine(self.db_url)  # migrate now, not on the first request
        self.bus = EventBus(self.settings.redis_url)
        self.limiter = RateLimiter(self.settings.rate_limit_per_minute, self.settings.redis_url)
        self.stream_slots = StreamSlots(self.settings.redis_url, self.settings.stream_lease_s)
        self.metrics = Metrics(self.db_url)
        self.metrics.watch_replicas(
            lambda: self.runtimes.replica_states() if "runtimes" in self.__dict__ else [])
        # The hot path reads these from memory; the watcher tells them about changes.
        self.watcher = ChangeWatcher(self.db_url, self.settings.redis_url,
                                     self.settings.cache_check_s)
        self.catalogue = CatalogueCache(self.db_url, self.settings, self.watcher)
        self.keys = KeyCache(self.watcher)
        self.budget_free = BudgetFreeTeams(self.watcher)
        self.offload = Offload()
        # Streams pull their chunks on threads of their own (``relay``): a pull waits for the
        # model's next token, and as many streams as before (anyio's 40) must not take the
        # threads that whole calls run on.
        self.streams = Offload(name="modelyard-stream")
        # Sessions are closed on threads of their own: a close hands a connection back, and a
        # sync route may hold one of anyio's worker threads while it waits for that connection.
        self.release = Offload(4, "modelyard-release")
        if self.settings.redis_url:
            self.watcher.every(self._report_replicas)
        self.watcher.start()

    def session(self) -> AbstractContextManager[Session]:
        return session_scope(self.db_url)

    def new_session(self) -> Session:
        """A session that connects on first use; the caller closes it."""
        return Session(get_engine(self.db_url), expire_on_commit=False)

    def sessions(self) -> Iterator[Session]:
        with session_scope(self.db_url) as session:
            yield session

    @cached_property
    def celery(self) -> Celery:
        return make_celery(self.settings)

    def enqueue(self, job_id: str) -> None:
        """Have the workers woken for a stored job, moments later, off the request.

        The broker round trip was on every submission's path (#15).  The job row is committed
        before this is called, so a wake-up that is never sent (broker down, process killed)
        loses nothing: the reconciler enqueues a job queued for ``requeue_after_s``.  Jobs
        queued together share one wake-up, and none is sent while one already waits for a
        worker (``jobs.wake``): a worker's turn runs every queued job.  Raises at once when no
        broker is configured.
        """
        self.outbox.put(job_id)

    @cached_property
    def waker(self) -> Waker:
        celery = self.celery  # raises BrokerNotConfigured here, on the request, not later
        return Waker(broker_url(self.settings), lambda: send_turn(celery))

    @cached_property
    def outbox(self) -> Batcher[str]:
        waker = self.waker

        def send(_jobs: list[str]) -> None:  # one wake-up for the jobs queued together
            waker.wake()

        return Batcher(send, name="job-outbox")

    @cached_property
    def runtimes(self) -> RuntimeFactory:
        return RuntimeFactory(self.settings)

    @cached_property
    def committer(self) -> GroupCommitter:
        return GroupCommitter(self.db_url)

    @cached_property
    def cascade(self) -> Cascade:
        return Cascade(self.session, self.settings, self.runtimes, catalogue=self.catalogue,
                       committer=self.committer,
                       budget=TeamBudgets(self.session, self.settings.budget_reservation_ttl_s,
                                         free=self.budget_free))

    def _report_replicas(self) -> None:
        """Publish this process's per-replica counts for `yard models show` (every interval)."""
        if "runtimes" in self.__dict__ and self.watcher.redis is not None:
            publish(self.watcher.redis, self.runtimes.replica_states())

    async def knows_model(self, name: str) -> bool:
        """Whether the catalogue has ``name``: from memory, re-read (off the loop) on a miss."""
        if name in self.catalogue.peek():
            return True
        return name in (await run_in_threadpool(self.catalogue.refresh)).entries

    def close(self) -> None:
        self.bus.close()
        self.offload.close()
        self.streams.close()
        self.release.close()
        self.stream_slots.close()
        self.watcher.close()
        if "committer" in self.__dict__:
            self.committer.close()
        if "runtimes" in self.__dict__:
            self.runtimes.close()
        if "outbox" in self.__dict__:
            self.outbox.close()
        if "waker" in self.__dict__:
            self.waker.close()
        if "celery" in self.__dict__:
            self.celery.close()

