"""How many job event streams one key holds open, counted across every API process.

Each open stream is a member of a Redis sorted set per key, scored with the moment its lease
runs out; a stream renews its lease while it lives (``StreamSlot.renew``) and removes itself when
it ends. A stream whose API process was killed stops renewing, and its member is dropped
``lease_s`` later: a dead process leaks no slot for longer than that. Counting and adding happen
in one Lua script, so two processes racing for the last slot cannot both get it.

Without Redis (none configured, or it is down when a stream opens) the count falls back to this
process's own streams: a broker outage must not turn every stream into an error.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter

import redis

from ..errors import TooManyStreams

log = logging.getLogger(__name__)

LEASE_S = 30.0
_PREFIX = "modelyard:streams:"

# KEYS[1] the key's set; ARGV: now, lease expiry, member, limit (0: none), set ttl (s).
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local open = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[4])
if limit > 0 and open >= limit then return -open end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return open + 1
"""


def _refuse(open_now: int, limit: int) -> TooManyStreams:
    return TooManyStreams(
        f"this key already has {open_now} event streams open, the most allowed ({limit}); "
        "close one or poll GET /v1/jobs/{id}"
    )


class StreamSlot:
    """One open stream's place in its key's count; given back exactly once."""

    def __init__(self, slots: StreamSlots, subject: str, member: str | None) -> None:
        self._slots, self._subject, self._member = slots, subject, member
        self._held = True
        self._renewed = time.monotonic()

    @property
    def shared(self) -> bool:
        """True when the slot is counted in Redis (every API process sees it)."""
        return self._member is not None

    @property
    def renew_due(self) -> bool:
        """A third of the lease has passed since the last renewal (a cheap check, no I/O)."""
        return (self._held and self._member is not None
                and time.monotonic() - self._renewed >= self._slots.lease_s / 3)

    def renew(self) -> None:
        """Push the lease out again (blocking I/O: the stream calls it off the event loop)."""
        if self._held and self._member is not None:
            self._renewed = time.monotonic()
            self._slots.renew(self._subject, self._member)

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.give_back(self._subject, self._member)


class StreamSlots:
    """Open streams per key: in Redis when it answers, else in this process."""

    def __init__(self, redis_url: str | None, lease_s: float = LEASE_S) -> None:
        self.lease_s = lease_s
        self._redis = (redis.Redis.from_url(redis_url, socket_timeout=2,
                                            socket_connect_timeout=2)
                       if redis_url else None)
        self._take_script = self._redis.register_script(_TAKE) if self._redis else None
        self._lock = threading.Lock()
        self._local: Counter[str] = Counter()

    def take(self, subject: str, limit: int) -> StreamSlot:
        """A slot for one more stream of ``subject``, or ``TooManyStreams`` (429)."""
        if self._take_script is not None:
            member = uuid.uuid4().hex
            now = time.time()
            try:
                opened = int(self._take_script(
                    keys=[_PREFIX + subject],
                    args=[now, now + self.lease_s, member, limit, int(self.lease_s) + 1]))
            except redis.RedisError as exc:
                log.warning("stream count in Redis unavailable (%s); counting in-process", exc)
            else:
                if opened <= 0:
                    raise _refuse(-opened, limit)
                return StreamSlot(self, subject, member)
        with self._lock:
            if limit and self._local[subject] >= limit:
                raise _refuse(self._local[subject], limit)
            self._local[subject] += 1
        return StreamSlot(self, subject, None)

    def renew(self, subject: str, member: str) -> None:
        """Re-add the member with a fresh expiry: it also comes back after a Redis restart."""
        assert self._redis is not None
        try:
            pipe = self._redis.pipeline()
            pipe.zadd(_PREFIX + subject, {member: time.time() + self.lease_s})
            pipe.expire(_PREFIX + subject, int(self.lease_s) + 1)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not renew an event stream's slot: %s", exc)

    def give_back(self, subject: str, member: str | None) -> None:
        if member is not None:
            assert self._redis is not None
            try:
                self._redis.zrem(_PREFIX + subject, member)
            except redis.RedisError as exc:  # its lease lapses by itself
                log.warning("could not give back an event stream's slot: %s", exc)
            return
        with self._lock:
            self._local[subject] -= 1
            if self._local[subject] <= 0:
                del self._local[subject]

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
