"""The least a Python gateway on Modelyard's serving stack can do: a floor to measure against.

uvicorn with the same options as ``yard api`` (uvloop and httptools where installed, no access
log), one raw ASGI app and no framework: ``POST /v1/chat/completions`` reads the body and
forwards it unchanged to one OpenAI-compatible backend through a keep-alive ``aiohttp`` pool
(installed with litellm), then relays the answer (chunk by chunk when the backend streams).
aiohttp, not ``httpx.AsyncClient``: with httpx this floor added 2.4 ms at p50 and took 2.6 ms
of CPU per request on the 2-core dev VM, with aiohttp 0.8 ms and 0.8 ms, so the floor is what a
Python proxy can do, not what one client library costs.  No key, no
rate limit, no routing, no database, no usage row: what it adds over calling the backend
directly is what the HTTP hop through a Python process costs on this machine, so
``gateway_overhead.py --floor`` shows how much of Modelyard's added time is its own work.

    .venv/bin/python bench/_floor_gateway.py PORT BACKEND_BASE_URL
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def floor_app(backend: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    client: aiohttp.ClientSession | None = None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal client
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    client = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if client is not None:
                        await client.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert client is not None
        if scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        async with client.post(f"{backend}/chat/completions", data=body,
                               headers={"content-type": "application/json"}) as upstream:
            await send({"type": "http.response.start", "status": upstream.status,
                        "headers": [(b"content-type",
                                     upstream.headers.get("content-type", "").encode())]})
            async for chunk in upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


if __name__ == "__main__":
    uvicorn.run(floor_app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning", access_log=False)
