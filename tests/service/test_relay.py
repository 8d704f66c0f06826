"""``relay``: a stream the client leaves is closed, but never while its chunk is being made.

A cancelled executor future does not stop its thread; closing the generator then would fail
("generator already executing") and skip its ``finally`` (the usage row, the budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Generator

import anyio
from modelyard_platform.api.offload import Offload
from modelyard_platform.api.relay import RelayResponse, prime, relay
from starlette.requests import ClientDisconnect
from starlette.types import Message


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


def _counted(log: list[str]) -> Generator[str, None, None]:
    try:
        for piece in ("role", "token", "more"):
            log.append(f"made {piece} on {threading.current_thread().name}")
            yield piece
    finally:
        log.append(f"closed on {threading.current_thread().name}")


def test_primed_chunks_are_sent_first_and_the_rest_is_pulled_on_the_pool() -> None:
    log: list[str] = []
    ready, rest = prime(_counted(log), 2)
    assert ready == ["role", "token"]

    async def main() -> list[str]:
        pool = Offload(1, "test-prime")
        try:
            return [chunk async for chunk in relay(rest, pool, ready)]
        finally:
            pool.close()

    assert asyncio.run(main()) == ["role", "token", "more"]
    assert log[2].startswith("made more on test-prime")
    assert log[3].startswith("closed on test-prime")  # ended on the pool: no extra hop


def test_priming_that_fails_raises_in_the_stream_after_the_chunks_it_made() -> None:
    def broken() -> Generator[str, None, None]:
        yield "role"
        raise RuntimeError("backend bug")

    ready, rest = prime(broken(), 2)
    assert ready == ["role"]

    async def main() -> None:
        pool = Offload(1, "test-prime")
        try:
            async for _ in relay(rest, pool, ready):
                pass
        finally:
            pool.close()

    try:
        asyncio.run(main())
    except RuntimeError as exc:
        assert str(exc) == "backend bug"
    else:
        raise AssertionError("the failure was lost")


def test_a_primed_stream_the_client_left_before_its_body_is_closed_on_the_pool() -> None:
    """The client is gone before the first pull: ``relay`` never starts; the response closes."""
    log: list[str] = []
    ready, rest = prime(_counted(log), 2)

    async def main() -> None:
        pool = Offload(1, "test-prime")
        response = RelayResponse(rest, pool, ready, media_type="text/event-stream")

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            raise OSError("the client is gone")

        try:
            scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
            with contextlib.suppress(ClientDisconnect):
                await response(scope, receive, send)
        finally:
            pool.close()

    asyncio.run(main())
    assert log[-1].startswith("closed on test-prime")
