"""The long-lived objects one API process shares between requests, built once by the app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property

from celery import Celery
from modelyard_registry.cascade import Cascade
from modelyard_registry.db import get_engine, session_scope
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings
from sqlmodel import Session

from ..jobs.celery_app import enqueue, make_celery
from ..jobs.events import EventBus
from ..metrics import Metrics
from ..products import ProductLike, all_products
from .limits import RateLimiter


@dataclass
class Services:
    settings: Settings
    products: dict[str, ProductLike] = field(default_factory=all_products)

    def __post_init__(self) -> None:
        self.db_url = self.settings.effective_database_url
        get_engine(self.db_url)  # migrate now, not on the first request
        self.bus = EventBus(self.settings.redis_url)
        self.limiter = RateLimiter(self.settings.rate_limit_per_minute, self.settings.redis_url)
        self.metrics = Metrics(self.db_url)

    def session(self) -> AbstractContextManager[Session]:
        return session_scope(self.db_url)

    def sessions(self) -> Iterator[Session]:
        with session_scope(self.db_url) as session:
            yield session

    @cached_property
    def celery(self) -> Celery:
        return make_celery(self.settings)

    def enqueue(self, job_id: str) -> None:
        """Send a job to the workers (raises if no broker is configured or reachable)."""
        enqueue(self.celery, job_id)

    @cached_property
    def runtimes(self) -> RuntimeFactory:
        return RuntimeFactory(self.settings)

    @cached_property
    def cascade(self) -> Cascade:
        return Cascade(self.session, self.settings, self.runtimes)

    def close(self) -> None:
        self.bus.close()
        if "runtimes" in self.__dict__:
            self.runtimes.close()
        if "celery" in self.__dict__:
            self.celery.close()

