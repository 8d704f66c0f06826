"""Relaying a blocking generator as an HTTP stream, closed at once when the client leaves.

Starlette runs a plain iterator body in the thread pool, and when the client disconnects it
cancels the response without closing that iterator: the generator (with the model call under it)
lives on until the garbage collector finds it, so the call's usage row landed late or never,
and the model kept generating.  ``relay`` pulls each chunk in the thread pool and, however it
ends (done, client gone, error), closes the generator in the thread pool, shielded from the
cancellation: its ``finally`` blocks (stop the backend, record the call, settle its budget
reservation) run right away, off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator

import anyio
import anyio.to_thread

_END = object()


async def relay(chunks: Generator[str, None, None]) -> AsyncIterator[str]:
    """``chunks`` as an async stream, closed in the thread pool however it ends.

    On cancellation the chunk being pulled is awaited first (anyio waits for its thread), so
    the generator is never closed while it runs.
    """
    try:
        while True:
            chunk = await anyio.to_thread.run_sync(next, chunks, _END)
            if chunk is _END:
                return
            assert isinstance(chunk, str)
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(chunks.close)


__all__ = ["relay"]
