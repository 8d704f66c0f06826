"""Prometheus metrics.

Request counts and latency are this process's; jobs by state and model calls/tokens/cost by
model are read from the database at scrape time, so they are right for the whole deployment
however many API and worker processes there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from modelyard_registry.db import session_scope
from modelyard_registry.runtimes.replicas import ReplicaState
from modelyard_registry.scores import Call
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from .models import Job, JobStatus


class DatabaseCollector(Collector):
    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        jobs = GaugeMetricFamily("modelyard_jobs", "Jobs by state.", labels=["status"])
        calls = CounterMetricFamily("modelyard_model_calls", "Model calls by model and outcome.",
                                    labels=["model", "outcome"])
        tokens = CounterMetricFamily("modelyard_model_tokens", "Tokens by model and direction.",
                                     labels=["model", "direction"])
        cost = CounterMetricFamily("modelyard_model_cost_usd", "USD spent by model.",
                                   labels=["model"])
        with session_scope(self.db_url) as session:
            counts = dict(session.exec(
                select(Job.status, func.count()).group_by(Job.status)
            ).all())
            for status in JobStatus:
                jobs.add_metric([status.value], float(counts.get(status, 0)))
            rows = session.execute(
                sa_select(col(Call.model_name), col(Call.outcome), func.count(),
                          func.sum(Call.prompt_tokens), func.sum(Call.completion_tokens),
                          func.sum(Call.cost_usd))
                .group_by(col(Call.model_name), col(Call.outcome))
            ).all()
        per_model: dict[str, list[float]] = {}
        for model, outcome, n, p_tokens, c_tokens, usd in rows:
            calls.add_metric([model, outcome], float(n))
            acc = per_model.setdefault(model, [0.0, 0.0, 0.0])
            acc[0] += float(p_tokens or 0)
            acc[1] += float(c_tokens or 0)
            acc[2] += float(usd or 0)
        for model, (p_tokens, c_tokens, usd) in sorted(per_model.items()):
            tokens.add_metric([model, "prompt"], p_tokens)
            tokens.add_metric([model, "completion"], c_tokens)
            cost.add_metric([model], usd)
        yield from (jobs, calls, tokens, cost)


class ReplicaCollector(Collector):
    """In-flight requests and health per remote replica, as this process routes them."""

    def __init__(self, states: Callable[[], list[ReplicaState]]) -> None:
        self.states = states

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        flight = GaugeMetricFamily("modelyard_replica_in_flight",
                                   "Requests in flight per replica (this API process).",
                                   labels=["model", "endpoint"])
        healthy = GaugeMetricFamily("modelyard_replica_healthy",
                                    "1 if the replica answers, 0 while it is skipped.",
                                    labels=["model", "endpoint"])
        served = CounterMetricFamily("modelyard_replica_requests",
                                     "Requests sent per replica (this API process).",
                                     labels=["model", "endpoint"])
        for s in self.states():
            flight.add_metric([s.model, s.url], float(s.in_flight))
            healthy.add_metric([s.model, s.url], 1.0 if s.healthy else 0.0)
            served.add_metric([s.model, s.url], float(s.served))
        yield from (flight, healthy, served)


class Metrics:
    """One registry per app, so several apps (tests) never share or collide."""

    def __init__(self, db_url: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelyard_http_requests", "HTTP requests.", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelyard_http_request_seconds", "HTTP request latency.", ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(db_url))

    def watch_replicas(self, states: Callable[[], list[ReplicaState]]) -> None:
        self.registry.register(ReplicaCollector(states))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
