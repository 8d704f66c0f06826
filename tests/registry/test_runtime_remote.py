"""The OpenAI-compatible runtime through litellm: a real server, and servers that misbehave."""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import jsonschema
import pytest
from modelyard_registry.errors import BackendError, BackendTimeout, BackendUnreachable
from modelyard_registry.runtimes import GenerationRequest, OpenAICompatRuntime
from modelyard_registry.runtimes.openai_compat import check_health
from modelyard_registry.validators import value_probability

from ..conftest import free_port

HELLO = GenerationRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=16)


def runtime(base_url: str, **kw: object) -> OpenAICompatRuntime:
    options: dict = {"connect_timeout_s": 2.0, "read_timeout_s": 30.0, "max_retries": 2,
                     "backoff_s": 0.05}
    options.update(kw)
    return OpenAICompatRuntime(name="remote", base_url=base_url, served_name="smollm2",
                               api_key=None, **options)


def test_generates_through_litellm(openai_server: str) -> None:
    done = runtime(openai_server).generate(HELLO)
    assert done.text.strip()
    assert done.prompt_tokens > 0
    assert 0 < done.completion_tokens <= 16
    assert 0 < done.ttft_s <= done.latency_s


def test_calls_share_one_kept_alive_connection_and_a_stream_left_early_is_not_reused(
    openai_server: str,
) -> None:
    """Sequential calls reuse one connection; a stream its reader stopped part-way closes
    its connection, so the next call never reads the rest of that answer as its own."""
    remote = runtime(openai_server)
    connections = remote.pool.connection_from_url(openai_server)
    for _ in range(3):
        assert remote.generate(HELLO).text.strip()
    assert connections.num_connections == 1
    events = remote.stream(GenerationRequest(
        messages=[{"role": "user", "content": "Count from one to forty in words."}],
        max_tokens=96))
    assert next(event for event in events if event.text)
    events.close()  # the reader leaves with most of the answer unread
    done = remote.generate(HELLO)
    assert done.text.strip() and done.finish_reason in {"stop", "length"}
    assert 0 < done.completion_tokens <= 16
    assert connections.num_connections == 2


def test_token_logprobs_and_texts_from_a_vllm_shaped_stream() -> None:
    """vLLM streams each chunk's ``logprobs.content`` (token, logprob); llama_cpp.server sends
    none on a chat stream, so this server writes what vLLM writes."""
    tokens = [("{\"", -0.5), ("label", -0.01), ("\":", 0.0), (" \"", 0.0), ("yes", -0.9),
              ("\"}", 0.0)]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            sent = json.loads(self.rfile.read(int(self.headers["content-length"])))
            assert sent["logprobs"] is True
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for token, logprob in tokens:
                chunk = {"choices": [{"index": 0, "delta": {"content": token},
                                      "logprobs": {"content": [{"token": token,
                                                                "logprob": logprob}]}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": len(tokens)}}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = runtime(f"http://127.0.0.1:{server.server_address[1]}/v1").generate(
            dataclasses.replace(HELLO, logprobs=True))
    finally:
        server.shutdown()
        server.server_close()
    assert done.text == '{"label": "yes"}'
    assert done.token_texts == [t for t, _ in tokens]
    assert done.token_logprobs == [lp for _, lp in tokens]
    assert value_probability(done, "label") == pytest.approx(math.exp(-0.9))


def test_a_byte_that_is_not_utf8_spoils_one_character_not_the_call() -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {"content": "caf\xe9"}}]}'
                             b"\n\n")
            end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = runtime(f"http://127.0.0.1:{server.server_address[1]}/v1").generate(HELLO)
    finally:
        server.shutdown()
        server.server_close()
    assert done.text == "caf\ufffd"
    assert done.finish_reason == "stop"


def test_json_schema_through_response_format(openai_server: str) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "sunny": {"type": "boolean"}},
        "required": ["city", "sunny"],
    }
    request = GenerationRequest(
        messages=[{"role": "user", "content": "Paris is sunny today. Give city and sunny."}],
        max_tokens=60, json_schema=schema,
    )
    done = runtime(openai_server, response_format="json_object").generate(request)
    jsonschema.validate(json.loads(done.text), schema)


def test_health_check(openai_server: str) -> None:
    assert check_health(openai_server, None, 3.0) == (True, None)
    ok, error = check_health(f"http://127.0.0.1:{free_port()}/v1", None, 1.0)
    assert not ok and "cannot reach" in (error or "")


class _Counting(ThreadingHTTPServer):
    hits = 0


def _serve(status: int | Literal["drop"] | None) -> Iterator[tuple[str, _Counting]]:
    """``status`` None hangs forever after reading the request, ``"drop"`` closes the connection
    without an answer; otherwise answers it."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            server.hits += 1
            self.rfile.read(int(self.headers.get("content-length", 0)))
            if status is None:
                time.sleep(30)
                return
            if status == "drop":
                self.close_connection = True
                return
            body = json.dumps({"error": {"message": "boom", "type": "server_error"}}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = _Counting(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hanging_server() -> Iterator[tuple[str, _Counting]]:
    yield from _serve(None)


@pytest.fixture
def failing_server() -> Iterator[tuple[str, _Counting]]:
    yield from _serve(500)


@pytest.fixture
def rejecting_server() -> Iterator[tuple[str, _Counting]]:
    yield from _serve(400)


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, _Counting]]:
    yield from _serve("drop")


def test_hanging_server_times_out_without_retrying(hanging_server: tuple[str, _Counting]) -> None:
    url, server = hanging_server
    started = time.monotonic()
    with pytest.raises(BackendTimeout, match="within 1s") as info:
        runtime(url, read_timeout_s=1.0).generate(HELLO)
    assert time.monotonic() - started < 8
    assert server.hits == 1
    assert info.value.reached  # the server had the request: the attempt is not free


def test_server_error_is_retried_a_bounded_number_of_times(
    failing_server: tuple[str, _Counting],
) -> None:
    url, server = failing_server
    with pytest.raises(BackendError, match="HTTP 500") as info:
        runtime(url, max_retries=2).generate(HELLO)
    assert server.hits == 3  # first try + 2 retries
    assert not info.value.reached  # it answered an error: nothing generated


def test_a_connection_dropped_after_the_request_says_the_server_had_it(
    dropping_server: tuple[str, _Counting],
) -> None:
    url, server = dropping_server
    with pytest.raises(BackendUnreachable, match="dropped the connection") as info:
        runtime(url, max_retries=1).generate(HELLO)
    assert server.hits == 2
    assert info.value.reached


def test_client_error_is_not_retried(rejecting_server: tuple[str, _Counting]) -> None:
    url, server = rejecting_server
    with pytest.raises(BackendError):
        runtime(url, max_retries=2).generate(HELLO)
    assert server.hits == 1


def test_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as s:  # a port that is bound but never listens refuses connections
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        with pytest.raises(BackendUnreachable, match="3 attempts") as info:
            runtime(url, max_retries=2).generate(HELLO)
        assert not info.value.reached  # never sent: the attempt is free
