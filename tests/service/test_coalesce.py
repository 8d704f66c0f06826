"""An answer's writes leave as one (``api/coalesce.py``), in order, and never wait past a pass.

Against a real uvicorn server on loopback: the answer is whole and correct, whatever was
coalesced; and on a transport that records its writes: what a request's answer writes in one
pass of the loop is one write, later chunks go straight out, a close sends what is held first,
and nothing is written to a transport already closing.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from modelyard_platform.api.coalesce import CoalescingHttpTools, CoalescingTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def test_writes_of_one_pass_go_out_as_one_and_in_order() -> None:
    async def scenario() -> None:
        inner = Recording()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.hold()  # a request began
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        assert inner.writes == []
        await asyncio.sleep(0)  # the end of this pass
        assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        transport.write(b"data: 1\n\n")  # a later chunk of a stream goes straight out
        assert inner.writes[1:] == [b"data: 1\n\n"]
        transport.hold()  # the next request: an answer completed is sent at once
        transport.write(b"head")
        transport.write(b"body")
        transport.flush()
        assert inner.writes[2:] == [b"headbody"]

    asyncio.run(scenario())


def test_close_sends_what_is_held_and_a_closing_transport_gets_nothing() -> None:
    async def scenario() -> None:
        inner = Recording()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.hold()
        transport.write(b"bye")
        transport.close()
        assert inner.writes == [b"bye"] and inner.closing
        other = Recording()
        transport = CoalescingTransport(other, asyncio.get_running_loop())
        transport.hold()
        transport.write(b"lost")
        other.closing = True  # the peer went away before the pass ended
        await asyncio.sleep(0)
        assert other.writes == []

    asyncio.run(scenario())


async def _json(_: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "text": "x" * 100_000})


async def _stream(_: Request) -> StreamingResponse:
    async def chunks() -> Any:
        for i in range(3):
            yield f"data: {i}\n\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(chunks(), media_type="text/event-stream")


@pytest.fixture
def server() -> Iterator[str]:
    app = Starlette(routes=[Route("/json", _json), Route("/stream", _stream)])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=CoalescingHttpTools,
                            log_level="warning")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not served.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    thread.join(10)


def test_answers_and_streams_arrive_whole_over_keep_alive(server: str) -> None:
    with httpx.Client(timeout=10) as client:
        for _ in range(3):  # one connection, reused: each answer ends where it should
            r = client.get(f"{server}/json")
            assert r.status_code == 200 and r.json() == {"ok": True, "text": "x" * 100_000}
            with client.stream("GET", f"{server}/stream") as s:
                assert list(s.iter_lines()) == ["data: 0", "", "data: 1", "", "data: 2", ""]
