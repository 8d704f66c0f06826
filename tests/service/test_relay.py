"""``relay``: a stream the client leaves is closed, but never while its chunk is being made.

A cancelled executor future does not stop its thread; closing the generator then would fail
("generator already executing") and skip its ``finally`` (the usage row, the budget).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator

import anyio
from modelyard_platform.api.offload import Offload
from modelyard_platform.api.relay import relay


def test_a_relay_cancelled_mid_chunk_closes_its_generator_after_the_chunk() -> None:
    making = threading.Event()
    release = threading.Event()
    seen: list[str] = []

    def chunks() -> Generator[str, None, None]:
        try:
            yield "first"
            making.set()
            release.wait(10)  # the model producing the next token
            seen.append("second made")
            yield "second"
        finally:
            seen.append("closed")

    async def main() -> None:
        pool = Offload(2, "test-relay")
        got: list[str] = []

        async def client() -> None:
            async for chunk in relay(chunks(), pool):
                got.append(chunk)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client)
                await asyncio.get_running_loop().run_in_executor(None, making.wait, 10)
                tg.cancel_scope.cancel()  # the client leaves while "second" is being made
                asyncio.get_running_loop().call_later(0.2, release.set)
        finally:
            pool.close()
        assert got == ["first"]

    asyncio.run(main())
    assert seen == ["second made", "closed"]
