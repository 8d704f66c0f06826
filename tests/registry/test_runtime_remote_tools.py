"""Remote OpenAI-compatible models get ``tools`` passed through, and their streamed calls back.

The server is a real HTTP server on 127.0.0.1 that answers the way OpenAI streams a tool call
(id, type and name in the first delta, the arguments in pieces), and records what it was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from modelyard_registry.runtimes import (
    GenerationRequest,
    OpenAICompatRuntime,
    ToolCall,
    ToolCallDelta,
)

GET_ORDER = {"type": "function", "function": {
    "name": "get_order", "parameters": {"type": "object",
                                        "properties": {"order_id": {"type": "string"}}}}}
DELTAS = [
    {"index": 0, "id": "call_abc", "type": "function",
     "function": {"name": "get_order", "arguments": ""}},
    {"index": 0, "function": {"arguments": '{"order_'}},
    {"index": 0, "function": {"arguments": 'id": "A-5512"}'}},
]


class _Recording(ThreadingHTTPServer):
    bodies: list[dict[str, Any]]


@pytest.fixture
def tool_server() -> Iterator[tuple[str, _Recording]]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            server.bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [d]},
                                    "finish_reason": None}]} for d in DELTAS]
            chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
            chunks.append({"choices": [], "usage": {"prompt_tokens": 40,
                                                    "completion_tokens": 12}})
            body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    server = _Recording(("127.0.0.1", 0), Handler)
    server.bodies = []
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server
    finally:
        server.shutdown()
        server.server_close()


def test_tools_pass_through_and_calls_come_back(tool_server: tuple[str, _Recording]) -> None:
    url, server = tool_server
    runtime = OpenAICompatRuntime(name="remote", base_url=url, served_name="m", api_key=None,
                                  connect_timeout_s=2.0, read_timeout_s=10.0, max_retries=0)
    request = GenerationRequest(messages=[{"role": "user", "content": "Where is A-5512?"}],
                                tools=[GET_ORDER], tool_choice="required", tool_name="get_order")
    events = list(runtime.stream(request))
    sent = server.bodies[-1]
    assert sent["tools"] == [GET_ORDER]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_order"}}
    deltas = [e.tool_call for e in events if e.tool_call is not None]
    assert deltas[0] == ToolCallDelta(index=0, id="call_abc", name="get_order", arguments="")
    done = events[-1].completion
    assert done is not None and done.finish_reason == "tool_calls"
    assert done.tool_calls == [ToolCall("call_abc", "get_order", '{"order_id": "A-5512"}')]
    assert (done.prompt_tokens, done.completion_tokens) == (40, 12)

    runtime.generate(GenerationRequest(messages=[{"role": "user", "content": "hi"}],
                                       tools=[GET_ORDER]))
    assert server.bodies[-1]["tool_choice"] == "auto"
    runtime.generate(GenerationRequest(messages=[{"role": "user", "content": "hi"}]))
    assert "tools" not in server.bodies[-1] and "tool_choice" not in server.bodies[-1]
