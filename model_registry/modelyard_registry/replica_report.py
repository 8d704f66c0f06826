"""Per-replica health and in-flight counts where an operator can see them.

In-flight counts live in the API processes that route requests; each publishes its counts to
Redis every second (``publish``), and ``yard models show`` sums the fresh reports per endpoint
(``rows``), next to a health probe made right then.
"""

from __future__ import annotations

import json
import os
import time

import redis
from pydantic import BaseModel

from .catalog import Backend, ModelEntry
from .egress import read_secret
from .runtimes.openai_compat import check_health
from .runtimes.replicas import ReplicaState
from .settings import Settings

KEY = "modelyard:replicas"
FRESH_S = 5.0


class ReplicaRow(BaseModel):
    """One endpoint of a model, as `yard models show` prints it."""

    url: str
    healthy: bool
    error: str | None
    in_flight: int | None  # None: no API process reported (none running, or no Redis)
    served: int | None


def publish(client: redis.Redis, states: list[ReplicaState]) -> None:
    """Publish the calling process's counts: one hash field per endpoint and process."""
    pid, now = os.getpid(), time.time()
    fields = {f"{s.model}|{s.url}|{pid}": json.dumps(
        {"in_flight": s.in_flight, "healthy": s.healthy, "served": s.served, "at": now})
        for s in states}
    if fields:
        client.hset(KEY, mapping=fields)  # type: ignore[arg-type]
        client.expire(KEY, 60)


def reported(redis_url: str | None, model: str) -> dict[str, tuple[int, int]]:
    """Fresh (in flight, served) per endpoint of ``model``, summed over API processes."""
    if not redis_url:
        return {}
    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.hgetall(KEY)
    except redis.RedisError:
        return {}
    finally:
        client.close()
    totals: dict[str, tuple[int, int]] = {}
    now = time.time()
    for field, value in raw.items():
        text = field.decode() if isinstance(field, bytes) else str(field)
        name, url, _pid = text.rsplit("|", 2)
        report = json.loads(value)
        if name != model or now - float(report["at"]) > FRESH_S:
            continue
        flight, served = totals.get(url, (0, 0))
        totals[url] = (flight + int(report["in_flight"]), served + int(report["served"]))
    return totals


def rows(entry: ModelEntry, redis_url: str | None, timeout_s: float) -> list[ReplicaRow]:
    """Each endpoint of a remote entry: probed now, with the API processes' counts."""
    if entry.backend != Backend.openai_compatible or not entry.base_url:
        return []
    key = read_secret(entry.api_key_env, Settings().secret_env_allow)
    counts = reported(redis_url, entry.name)
    out = []
    for url in entry.endpoints or [entry.base_url]:
        ok, error = check_health(url, key, timeout_s)
        flight, served = counts.get(url, (None, None))
        out.append(ReplicaRow(url=url, healthy=ok, error=error, in_flight=flight, served=served))
    return out


__all__ = ["ReplicaRow", "publish", "reported", "rows"]
