"""An OpenAI-compatible server that answers instantly, so a benchmark times only the gateway.

Raw asyncio (no framework): ``GET /v1/models`` and ``POST /v1/chat/completions``, streaming
(SSE, chunked) or not, HTTP/1.1 keep-alive, fixed bodies with exact usage.  Run it as its own
process so its CPU is not the client's:

    .venv/bin/python bench/_instant_backend.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

MODEL = "instant"
USAGE = {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}
MODELS = json.dumps({"object": "list", "data": [
    {"id": MODEL, "object": "model", "owned_by": "bench", "max_model_len": 8192}]}).encode()
COMPLETION = json.dumps({
    "id": "chatcmpl-instant", "object": "chat.completion", "created": 0, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"},
                 "finish_reason": "stop"}],
    "usage": USAGE,
}).encode()


def _chunk(delta: dict[str, str], finish: str | None = None,
           usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, object] = {
        "id": "chatcmpl-instant", "object": "chat.completion.chunk", "created": 0,
        "model": MODEL, "choices": [] if usage else [
            {"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


STREAM = b"".join([
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hello"}),
    _chunk({"content": " world"}),
    _chunk({}, "stop"),
    _chunk({}, usage=USAGE),
    b"data: [DONE]\n\n",
])


def _response(body: bytes, content_type: bytes, chunked: bool = False) -> bytes:
    if chunked:
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        return (b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type
                + b"\r\ntransfer-encoding: chunked\r\n\r\n" + payload)
    return (b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type
            + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


class Instant(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4:end], self.buffer[end:]
            method, path = head.split(" ", 2)[:2]
            self.transport.write(self._answer(method, path, body))

    @staticmethod
    def _answer(method: str, path: str, body: bytes) -> bytes:
        if method == "GET" and path.endswith("/models"):
            return _response(MODELS, b"application/json")
        if method == "POST" and path.endswith("/chat/completions"):
            if json.loads(body or b"{}").get("stream"):
                return _response(STREAM, b"text/event-stream", chunked=True)
            return _response(COMPLETION, b"application/json")
        return NOT_FOUND


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Instant, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
