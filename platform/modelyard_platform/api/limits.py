"""Request size and rate limits, enforced before any work is done."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict

import redis
import redis.asyncio as aioredis
from modelyard_registry.errors import ModelyardError
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RateLimited(ModelyardError):
    http_status = 429
    error_type = "rate_limited"


class BodyLimit:
    """Answer 413 for bodies over ``max_bytes``, by Content-Length or while reading a stream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        too_big = False

        async def limited() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": {
            "type": "payload_too_large",
            "message": f"request body is larger than {self.max_bytes} bytes",
        }}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class RateLimiter:
    """Fixed one-minute windows per key.

    Counted in Redis when there is one (shared by all API processes), else in this process.
    """

    def __init__(self, per_minute: int, redis_url: str | None) -> None:
        self.per_minute = per_minute
        self._redis = redis.Redis.from_url(redis_url) if redis_url else None
        self._redis_url = redis_url
        self._aio: tuple[asyncio.AbstractEventLoop, aioredis.Redis] | None = None
        self._local: dict[tuple[int | str, int], int] = defaultdict(int)
        self._lock = threading.Lock()

    def hit(self, key_id: int | str) -> None:
        if self.per_minute <= 0:
            return
        window = int(time.time() // 60)
        count = self._count(key_id, window)
        if count > self.per_minute:
            raise RateLimited(
                f"rate limit of {self.per_minute} requests per minute exceeded; retry shortly"
            )

    async def check(self, key_id: int | str) -> None:
        """``hit`` for the event loop: Redis spoken asynchronously, no thread hop."""
        if self.per_minute <= 0:
            return
        window = int(time.time() // 60)
        count = await self._acount(key_id, window)
        if count > self.per_minute:
            raise RateLimited(
                f"rate limit of {self.per_minute} requests per minute exceeded; retry shortly"
            )

    async def _acount(self, key_id: int | str, window: int) -> int:
        if self._redis_url is not None:
            try:
                client = self._async_client()
                name = f"modelyard:rate:{key_id}:{window}"
                pipe = client.pipeline()
                pipe.incr(name)
                pipe.expire(name, 120)
                return int((await pipe.execute())[0])
            except redis.RedisError:
                pass  # Redis away: fall back to this process's count rather than refuse
        with self._lock:
            self._local[(key_id, window)] += 1
            return self._local[(key_id, window)]

    def _async_client(self) -> aioredis.Redis:
        """One asyncio client per event loop (a client is bound to the loop it first ran on)."""
        loop = asyncio.get_running_loop()
        if self._aio is None or self._aio[0] is not loop:
            assert self._redis_url is not None
            self._aio = (loop, aioredis.Redis.from_url(self._redis_url))
        return self._aio[1]

    def _count(self, key_id: int | str, window: int) -> int:
        if self._redis is not None:
            try:
                name = f"modelyard:rate:{key_id}:{window}"
                pipe = self._redis.pipeline()
                pipe.incr(name)
                pipe.expire(name, 120)
                return int(pipe.execute()[0])
            except redis.RedisError:
                pass  # Redis away: fall back to this process's count rather than refuse
        with self._lock:
            self._local[(key_id, window)] += 1
            return self._local[(key_id, window)]
