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
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from functools import partial

import anyio

from .offload import Offload

_END = object()


async def relay(chunks: Generator[str, None, None], pool: Offload) -> AsyncIterator[str]:
    """``chunks`` as an async stream, pulled and closed on ``pool`` however it ends."""
    pulling: asyncio.Future[object] | None = None
    try:
        while True:
            pulling = pool.start(partial(next, chunks, _END))
            chunk = await asyncio.shield(pulling)
            if chunk is _END:
                return
            assert isinstance(chunk, str)
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            if pulling is not None and not pulling.done():
                await asyncio.wait([pulling])  # the chunk being made, then the close
            await pool(chunks.close)


__all__ = ["relay"]
