"""Job events: stored as rows (replayable, the truth) and announced on Redis pub/sub (fast).

A subscriber never trusts the announcement's content, only that something new exists: it reads
the rows after the last number it has seen, so a missed message costs latency, never an event.

Announcements are published by a thread of the bus (``Batcher``), not by the caller: each
``PUBLISH`` was a Redis round trip on the job's own path (four per ``echo`` job, a quarter of a
worker's time under load, #15).  The caller commits the row first and then queues the
announcement, so a listener woken by it always finds the row; announcements queued together go
in one pipeline, a few milliseconds later.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from sqlmodel import Session

from . import store
from .batcher import Batcher

log = logging.getLogger(__name__)


def channel(job_id: str) -> str:
    return f"modelyard:job:{job_id}"


class EventBus:
    """Writes an event row, then has its number published (best effort) on the job's channel."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis = redis.Redis.from_url(redis_url) if redis_url else None
        self._out: Batcher[tuple[str, int]] = Batcher(self._publish, name="event-bus")

    def emit(self, session: Session, job_id: str, type_: str, data: dict[str, Any]) -> int:
        """Write the event and have it announced; its number."""
        seq = store.add_event(session, job_id, type_, data)
        self.announce(job_id, seq)
        return seq

    def announce(self, job_id: str, seq: int) -> None:
        """Queue the announcement of a committed event; it is published moments later."""
        if self._redis is not None:
            self._out.put((job_id, seq))

    def _publish(self, batch: list[tuple[str, int]]) -> None:
        assert self._redis is not None
        pipe = self._redis.pipeline(transaction=False)
        for job_id, seq in batch:
            pipe.publish(channel(job_id), str(seq))
        pipe.execute()

    def close(self) -> None:
        """Publish what is queued (for up to two seconds), then drop the connection."""
        if self._redis is not None:
            self._out.close()
            self._redis.close()
