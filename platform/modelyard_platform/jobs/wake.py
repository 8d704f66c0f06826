"""Wake-ups: at most one broker message waits for the workers however many jobs were submitted.

A worker turn runs queued jobs back to back while any wait (``turn``), so the workers need a
message only when none of them is already on its way to drain the queue.  One message per job
(#15) cost a kombu publish in the API and a prefork delivery, an ack and a job-less turn in the
worker for nearly every job of a burst, since the turn before had already run it.

A Redis key marks a wake-up sent and not yet taken: the sender sets it (``SET NX``) and sends
only if it was not set; the worker deletes it when its turn starts, *before* it looks for jobs.
So a job committed before a failed ``SET NX`` is seen by the turn whose message set the key.
The key expires after ``TTL_S``, so a sender killed between the two steps, or a message the
broker lost, delays jobs by seconds at most; the reconciler still re-enqueues any job queued for
``requeue_after_s`` with no worker.  An extra wake-up is harmless: its turn finds nothing to run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

KEY = "modelyard:wake"
TTL_S = 5


class Waker:
    """Sends a wake-up through ``send`` unless one is already waiting for a worker."""

    def __init__(self, redis_url: str, send: Callable[[], None]) -> None:
        self._redis = redis.Redis.from_url(redis_url)
        self._send = send

    def wake(self) -> bool:
        """Send a wake-up if none waits; True when this call sent one."""
        if not self._redis.set(KEY, b"1", nx=True, ex=TTL_S):
            return False
        try:
            self._send()
        except Exception:
            self._redis.delete(KEY)  # the next submission tries again
            raise
        return True

    def taken(self) -> None:
        """A worker's turn starts: a job submitted from now on needs a new wake-up."""
        self._redis.delete(KEY)

    def close(self) -> None:
        self._redis.close()


__all__ = ["KEY", "TTL_S", "Waker"]
