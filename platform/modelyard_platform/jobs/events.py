"""Job events: stored as rows (replayable, the truth) and announced on Redis pub/sub (fast).

A subscriber never trusts the announcement's content, only that something new exists: it reads
the rows after the last number it has seen, so a missed message costs latency, never an event.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from sqlmodel import Session

from ..models import JobEvent
from . import store

log = logging.getLogger(__name__)


def channel(job_id: str) -> str:
    return f"modelyard:job:{job_id}"


class EventBus:
    """Writes an event row, then publishes its number (best effort) on the job's channel."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis = redis.Redis.from_url(redis_url) if redis_url else None

    def emit(self, session: Session, job_id: str, type_: str, data: dict[str, Any]) -> JobEvent:
        event = store.add_event(session, job_id, type_, data)
        self.announce(job_id, event.seq)
        return event

    def announce(self, job_id: str, seq: int) -> None:
        if self._redis is None:
            return
        try:
            self._redis.publish(channel(job_id), str(seq))
        except redis.RedisError as exc:  # the row is written; listeners poll it anyway
            log.warning("could not announce event %s of job %s: %s", seq, job_id, exc)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
