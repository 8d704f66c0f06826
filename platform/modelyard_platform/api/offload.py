"""Blocking work (a model call, its usage commit) run off the event loop, on the API's own pool.

``run_in_threadpool`` (anyio's worker threads) cost about a tenth of the chat path's CPU on the
loop side: a ``Condition`` wake-up, a capacity limiter, and async-library and context lookups per
call (profiled, #15).  asyncio's executor hand-off is a C ``SimpleQueue`` put and one future, so
the hot routes hop through this pool instead.  It is as wide as anyio's default limiter (40), so
as many model calls run at once as before; contextvars travel with the call, as with anyio.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WIDTH = 40


class Offload:
    def __init__(self, width: int = WIDTH, name: str = "modelyard-call") -> None:
        self.pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix=name)

    async def __call__(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a pool thread; the awaiting request waits, the loop does not."""
        return await self.start(fn)

    def start(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """``fn()`` started on a pool thread; its future (cancelling it does not stop ``fn``)."""
        context = contextvars.copy_context()
        return asyncio.get_running_loop().run_in_executor(
            self.pool, functools.partial(context.run, fn))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["Offload"]
