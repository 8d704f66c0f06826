"""Relaying a blocking generator as an HTTP stream, closed at once when the client leaves.

Starlette runs a plain iterator body in the thread pool, and when the client disconnects it
cancels the response without closing that iterator: the generator (with the model call under it)
lives on until the garbage collector finds it, so the call's usage row landed late or never,
and the model kept generating.  ``relay`` pulls each chunk on the API's own pool and, however it
ends (done, client gone, error), closes the generator there, shielded from the cancellation: its
``finally`` blocks (stop the backend, record the call, settle its budget reservation) run right
away, off the event loop.

Chunks hop through ``api/offload.py`` (an executor future per chunk) rather than anyio's worker
threads (a limiter, a ``Condition`` wake-up and context lookups per chunk, #15).  A cancelled
executor future does not stop its thread, so the pull in flight is shielded and awaited before
the close: a generator is never closed while it is producing a chunk.

A hop costs tens of microseconds of the loop's CPU and a thread wake-up, and a stream made
several before its first token (open the call, the role chunk, the first token).  ``prime``
pulls the first chunks on the thread that opened the call, and ``relay`` sends them without a
hop; a generator that has ended is closed without one too.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Generator, Sequence
from functools import partial
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .offload import Offload

_END = object()


def prime(chunks: Generator[str, None, None], n: int
          ) -> tuple[list[str], Generator[str, None, None]]:
    """The first ``n`` chunks, pulled now on this (pool) thread, and the generator of the rest.

    Whatever pulling raises is raised by the rest, after the chunks pulled before it, where
    ``relay`` would have met it.
    """
    ready: list[str] = []
    try:
        for _ in range(n):
            ready.append(next(chunks))
    except StopIteration:
        pass
    except Exception as exc:  # raised from the rest, in the stream, as before
        return ready, _raise(exc)
    return ready, chunks


def _raise(exc: Exception) -> Generator[str, None, None]:
    raise exc
    yield ""  # pragma: no cover  (a generator)


async def relay(chunks: Generator[str, None, None], pool: Offload,
                ready: Sequence[str] = ()) -> AsyncIterator[str]:
    """``ready``, then ``chunks`` as an async stream, pulled and closed on ``pool``."""
    pulling: asyncio.Future[object] | None = None
    ended = False
    try:
        for first in ready:
            yield first
        while True:
            pulling = pool.start(partial(next, chunks, _END))
            chunk = await asyncio.shield(pulling)
            if chunk is _END:
                ended = True
                return
            assert isinstance(chunk, str)
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            if pulling is not None and not pulling.done():
                await asyncio.wait([pulling])  # the chunk being made, then the close
            if ended:
                chunks.close()  # it has returned: nothing runs, no hop needed
            else:
                await pool(chunks.close)


class RelayResponse(StreamingResponse):
    """A ``relay`` as an HTTP stream, whose generator is closed even if it was never pulled.

    A client that leaves before the body's first pull leaves ``relay`` unstarted, so its
    ``finally`` never runs; a primed generator has opened its model call by then, so it is
    closed here (on ``pool``, shielded), not by the garbage collector on whatever thread.
    """

    def __init__(self, chunks: Generator[str, None, None], pool: Offload,
                 ready: Sequence[str] = (), **kwargs: Any) -> None:
        self.chunks, self.pool = chunks, pool
        super().__init__(relay(chunks, pool, ready), **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if inspect.getgeneratorstate(self.chunks) == inspect.GEN_SUSPENDED:
                with anyio.CancelScope(shield=True):
                    await self.pool(self.chunks.close)


__all__ = ["RelayResponse", "prime", "relay"]
