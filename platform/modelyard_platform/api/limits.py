"""Request size and rate limits, enforced before any work is done."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import defaultdict

import redis
import redis.asyncio as aioredis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import RateLimited, error_body


class BodyLimit:
    """Read the body first: 413 past ``max_bytes``, 422 for JSON nested past ``max_depth``.

    The whole body is read here (bodies are small JSON documents, capped) and then handed to
    the app as one message: an oversize chunked body is answered 413 by us instead of surfacing
    as the framework's 400 "error parsing the body", and deep nesting never reaches a parser,
    serializer or pickler that would recurse on it (a 500, or a crashed call).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = 64) -> None:
        self.app, self.max_bytes, self.max_depth = app, max_bytes, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _reject(send, 413, "payload_too_large",
                          f"request body is larger than {self.max_bytes} bytes")
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay(b"", message, receive), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await _reject(send, 413, "payload_too_large",
                              f"request body is larger than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"application/json")
        if (b"json" in content_type
                and body.count(b"[") + body.count(b"{") > self.max_depth
                and json_depth(body) > self.max_depth):
            await _reject(send, 422, "invalid_input",
                          f"JSON nested deeper than {self.max_depth} levels")
            return
        await self.app(scope, _replay(body, None, receive), send)


_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, without parsing it (C-speed passes only).

    Strings are dropped (they may hold brackets): with escaped backslashes and then escaped
    quotes removed, the quotes left delimit strings, so every other piece between them is
    outside one. Brackets become +1/-1 signed bytes; the running sum's maximum is the depth.
    (Callers skip it when the body holds fewer brackets than their cap, as most do.)
    """
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    steps = memoryview(outside.translate(_OPEN_CLOSE, _NOT_BRACKETS)).cast("b")
    return max(itertools.accumulate(steps), default=0)


def _replay(body: bytes, first: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands over the body already read, then the client's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return first or {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reject(send: Send, status: int, type_: str, message: str) -> None:
    body = json.dumps(error_body(type_, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """Fixed one-minute windows per key.

    Counted in Redis when there is one (shared by all API processes), else in this process.
    A process takes its counts from Redis in blocks of 1% of the limit (``block``): one
    ``INCRBY`` serves that many requests, so at a high limit almost no request waits for Redis,
    and at a limit under 200 per minute every request is counted in Redis one by one, exactly.
    A block counts as used once taken, so a process may refuse up to one block per other API
    process early in a window, never let more than the limit through.
    """

    def __init__(self, per_minute: int, redis_url: str | None) -> None:
        self.per_minute = per_minute
        self.block = max(1, per_minute // 100)
        self._redis = redis.Redis.from_url(redis_url) if redis_url else None
        self._redis_url = redis_url
        self._aio: tuple[asyncio.AbstractEventLoop, aioredis.Redis] | None = None
        self._local: dict[tuple[int | str, int], int] = defaultdict(int)
        # (key, window) -> (next count to hand out, last count of the block taken)
        self._blocks: dict[tuple[int | str, int], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def _from_block(self, key: tuple[int | str, int]) -> int | None:
        """The next count from this process's block, or None when it is used up."""
        with self._lock:
            got = self._blocks.get(key)
            if got is None or got[0] > got[1]:
                return None
            self._blocks[key] = (got[0] + 1, got[1])
            return got[0]

    def _took(self, key: tuple[int | str, int], total: int) -> int:
        """Redis says ``total`` counts are taken, ours the last ``block``: hand out the first."""
        with self._lock:
            if len(self._blocks) > 10_000 or any(k[1] != key[1] for k in self._blocks):
                self._blocks = {k: v for k, v in self._blocks.items() if k[1] == key[1]}
            first = total - self.block + 1
            self._blocks[key] = (first + 1, total)
            return first

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
            key = (key_id, window)
            count = self._from_block(key)
            if count is not None:
                return count
            try:
                client = self._async_client()
                name = f"modelyard:rate:{key_id}:{window}"
                pipe = client.pipeline()
                pipe.incrby(name, self.block)
                pipe.expire(name, 120)
                return self._took(key, int((await pipe.execute())[0]))
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
            key = (key_id, window)
            count = self._from_block(key)
            if count is not None:
                return count
            try:
                name = f"modelyard:rate:{key_id}:{window}"
                pipe = self._redis.pipeline()
                pipe.incrby(name, self.block)
                pipe.expire(name, 120)
                return self._took(key, int(pipe.execute()[0]))
            except redis.RedisError:
                pass  # Redis away: fall back to this process's count rather than refuse
        with self._lock:
            self._local[(key_id, window)] += 1
            return self._local[(key_id, window)]
