"""Sign-in throttling: failed attempts counted per account and per client address.

Counted in Redis when there is one (shared by every API process), else in this process.  Only
failures count, so a person who types their password right is never locked out by their own
earlier successes; a window starts at the first failure and lasts ``window_s``.
"""

from __future__ import annotations

import hashlib
import threading
import time

import redis

from ..errors import TooManyAttempts


class SignInThrottle:
    def __init__(self, redis_url: str | None, *, per_account: int, per_address: int,
                 window_s: int) -> None:
        self._redis = redis.Redis.from_url(redis_url) if redis_url else None
        self.per_account, self.per_address, self.window_s = per_account, per_address, window_s
        self._local: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _names(email: str, address: str) -> tuple[str, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return f"modelyard:signin:account:{account}", f"modelyard:signin:address:{address}"

    def check(self, *, email: str, address: str) -> None:
        """Raise ``TooManyAttempts`` while either counter is at its limit."""
        account, addr = self._names(email, address)
        for name, limit in ((account, self.per_account), (addr, self.per_address)):
            count, wait_s = self._read(name)
            if count >= limit:
                minutes = max(1, round(wait_s / 60))
                raise TooManyAttempts(f"Too many failed sign-in attempts. Try again in about "
                                      f"{minutes} minute{'s' if minutes != 1 else ''}.")

    def failed(self, *, email: str, address: str) -> None:
        for name in self._names(email, address):
            self._add(name)

    def succeeded(self, *, email: str) -> None:
        name = self._names(email, "")[0]
        if self._redis is not None:
            try:
                self._redis.delete(name)
                return
            except redis.RedisError:
                pass
        with self._lock:
            self._local.pop(name, None)

    def _read(self, name: str) -> tuple[int, float]:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline()
                pipe.get(name)
                pipe.ttl(name)
                raw, ttl = pipe.execute()
                return int(raw or 0), float(max(int(ttl), 0))
            except redis.RedisError:
                pass  # Redis away: fall back to this process's count rather than refuse
        with self._lock:
            count, until = self._local.get(name, (0, 0.0))
            left = until - time.monotonic()
            return (count, left) if left > 0 else (0, 0.0)

    def _add(self, name: str) -> None:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline()
                pipe.set(name, 0, ex=self.window_s, nx=True)  # the window opens (Redis 6 too)
                pipe.incr(name)
                pipe.execute()
                return
            except redis.RedisError:
                pass
        with self._lock:
            count, until = self._local.get(name, (0, 0.0))
            if until <= time.monotonic():
                count, until = 0, time.monotonic() + self.window_s
            self._local[name] = (count + 1, until)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
