"""The rate limit counted in blocks taken from Redis: never more than the limit through, across
API processes, and a small limit counted request by request."""

from __future__ import annotations

import asyncio

import redis
from modelyard_platform.api.limits import RateLimited, RateLimiter

from tests.conftest import fresh_redis, redis_test_url

URL = redis_test_url(11)


def allowed(limiter: RateLimiter, n: int, key: str = "key-1") -> int:
    ok = 0
    for _ in range(n):
        try:
            limiter.hit(key)
            ok += 1
        except RateLimited:
            pass
    return ok


def test_processes_sharing_redis_let_the_limit_through_and_no_more() -> None:
    fresh_redis(URL)
    a, b = RateLimiter(1000, URL), RateLimiter(1000, URL)  # two API processes, blocks of 10
    assert a.block == 10
    through = 0
    for _ in range(60):  # interleaved: each takes blocks as it goes
        through += allowed(a, 10) + allowed(b, 10)
    assert through == 1000  # 1,200 asked: every count taken is used, none twice
    counted = int(redis.Redis.from_url(URL).get(next(iter(
        redis.Redis.from_url(URL).scan_iter("modelyard:rate:key-1:*")))) or 0)
    assert counted >= 1000


def test_a_small_limit_is_exact_and_async_agrees() -> None:
    fresh_redis(URL)
    limiter = RateLimiter(3, URL)
    assert limiter.block == 1

    async def codes() -> list[bool]:
        out = []
        for _ in range(5):
            try:
                await limiter.check("key-2")
                out.append(True)
            except RateLimited:
                out.append(False)
        return out

    assert asyncio.run(codes()) == [True, True, True, False, False]
    assert allowed(RateLimiter(3, URL), 2, "key-2") == 0  # another process sees the same count


def test_a_block_serves_requests_without_redis() -> None:
    fresh_redis(URL)
    limiter = RateLimiter(100_000, URL)  # blocks of 1,000
    assert allowed(limiter, 5) == 5
    key = next(iter(redis.Redis.from_url(URL).scan_iter("modelyard:rate:key-1:*")))
    assert int(redis.Redis.from_url(URL).get(key) or 0) == 1000  # one block, taken once
