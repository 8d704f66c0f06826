"""Replicas of one remote model: send each request to the least busy endpoint that answers.

A catalogue entry may list several endpoints serving the same model (vLLM pods behind no load
balancer of their own).  Each API process keeps, per endpoint, the requests it has in flight
and whether the endpoint is up; a request goes to the healthy endpoint with the fewest in
flight (ties to the earliest listed).  An endpoint that refuses a connection is marked down at
once and the request moves on to another one (no retry delay, nothing has streamed yet); a
down endpoint is probed (``GET /models``) in the background at most every ``probe_s`` and
comes back when it answers.  When every endpoint is down, all are tried: one may be back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Replica:
    url: str
    in_flight: int = 0
    healthy: bool = True
    error: str | None = None
    retry_at: float = 0.0
    served: int = 0
    probing: bool = False


@dataclass(frozen=True)
class ReplicaState:
    """One endpoint as ``/metrics`` and ``yard models show`` report it."""

    model: str
    url: str
    in_flight: int
    healthy: bool
    served: int
    error: str | None


Probe = Callable[[str], tuple[bool, str | None]]


@dataclass
class ReplicaSet:
    model: str
    urls: list[str]
    probe: Probe
    probe_s: float = 2.0
    replicas: list[Replica] = field(init=False)

    def __post_init__(self) -> None:
        self.replicas = [Replica(u) for u in self.urls]
        self._lock = threading.Lock()

    def acquire(self, tried: set[str]) -> Replica | None:
        """The endpoint for the next attempt (counted in flight), or None if all were tried."""
        now = time.monotonic()
        with self._lock:
            for r in self.replicas:
                if not r.healthy and not r.probing and now >= r.retry_at:
                    r.probing = True
                    threading.Thread(target=self._probe, args=(r,), daemon=True).start()
            fresh = [r for r in self.replicas if r.url not in tried]
            pool = [r for r in fresh if r.healthy] or fresh
            if not pool:
                return None
            best = min(pool, key=lambda r: r.in_flight)
            best.in_flight += 1
            best.served += 1
            return best

    def release(self, replica: Replica) -> None:
        with self._lock:
            replica.in_flight -= 1

    def mark_down(self, replica: Replica, error: str) -> None:
        with self._lock:
            replica.healthy, replica.error = False, error
            replica.retry_at = time.monotonic() + self.probe_s

    def mark_up(self, replica: Replica) -> None:
        with self._lock:
            replica.healthy, replica.error = True, None

    def states(self) -> list[ReplicaState]:
        with self._lock:
            return [ReplicaState(self.model, r.url, r.in_flight, r.healthy, r.served, r.error)
                    for r in self.replicas]

    def _probe(self, replica: Replica) -> None:
        try:
            ok, error = self.probe(replica.url)
        except Exception as exc:  # a probe never raises into anyone
            ok, error = False, str(exc)
        with self._lock:
            replica.probing = False
            if ok:
                replica.healthy, replica.error = True, None
            else:
                replica.error = error
                replica.retry_at = time.monotonic() + self.probe_s


__all__ = ["Replica", "ReplicaSet", "ReplicaState"]
