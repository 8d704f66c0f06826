"""Remote models behind any OpenAI-compatible server (vLLM, llama.cpp server, ...).

One keep-alive urllib3 pool per process (``call_pool``, owned by ``RuntimeFactory``) speaks the
wire format directly: a router in front of a model server must add as little as possible, and
litellm's per-call machinery (client construction, callbacks, response objects) cost
milliseconds per request on the hot path.  urllib3 rather than httpx for the calls themselves:
httpx's transport (httpcore and h11, in Python) took 541-699 us of CPU per streamed call where
urllib3 takes 405, and the API 8% less CPU per chat request (``bench/gateway_overhead.py``,
#15); health probes, off the request path, stay on httpx (``check_health``).  We keep control
of the parts that matter for a router: explicit connect/read timeouts, retries only where a
retry can help (5xx and connection failures, before any token arrived), exact usage from the
stream (``stream_options.include_usage``), logprobs, and both JSON Schema dialects
(``json_schema`` for OpenAI/vLLM, ``json_object`` + ``schema`` for llama-cpp-python's server).
A server that sends no usage gets litellm's tokenizer estimate, the only place litellm is still
used (imported lazily, never phoning home).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from ..egress import EgressPolicy
from ..errors import BackendError, BackendTimeout, BackendUnreachable, InvalidInput
from ..pricing import estimate_tokens
from .base import (
    Completion,
    GenerationRequest,
    Stopwatch,
    StreamEvent,
    ToolCallDelta,
    drain,
    join_tool_calls,
)
from .replicas import Replica, ReplicaSet

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

log = logging.getLogger(__name__)
_DEFAULT_HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive",
                    "User-Agent": "modelyard"}
_READ = 65536  # at most per read; a read returns what has arrived (``read1``), never waits for more


def call_pool(max_per_host: int = 128) -> urllib3.PoolManager:
    """The process's keep-alive pool for model calls, shared across requests, threads and models.

    No retries or redirects of its own (``_open`` decides what is retried), and the TLS trust
    httpx gives the health probes (certifi, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), so a
    server is trusted alike by both.  Beyond ``max_per_host`` connections to one server at once,
    extra ones are opened and closed after use rather than waited for.
    """
    return urllib3.PoolManager(num_pools=64, maxsize=max_per_host, block=False, retries=False,
                               ssl_context=httpx.create_ssl_context())


def shared_client(max_connections: int = 512) -> httpx.Client:
    """The process's pooled httpx client, for health probes and other calls off the request path."""
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max_connections, keepalive_expiry=30)
    return httpx.Client(limits=limits, timeout=httpx.Timeout(120.0, connect=5.0))


def check_health(base_url: str, api_key: str | None, timeout_s: float,
                 client: httpx.Client | None = None) -> tuple[bool, str | None]:
    """A model server is healthy when ``GET {base_url}/models`` answers 200 in time."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        get = client.get if client is not None else httpx.get
        response = get(f"{base_url}/models", headers=headers, timeout=timeout_s)
    except httpx.TimeoutException:
        return False, f"no answer within {timeout_s:g}s"
    except httpx.HTTPError as exc:
        return False, f"cannot reach the endpoint: {exc.__class__.__name__}"
    if response.status_code != 200:
        return False, f"GET /models answered HTTP {response.status_code}"
    return True, None


def estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """The litellm tokenizer's estimate, for servers that report no usage (documented in README)."""
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return int(litellm.token_counter(model="gpt-3.5-turbo", messages=messages))


class OpenAICompatRuntime:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        served_name: str,
        api_key: str | None,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_retries: int,
        backoff_s: float = 0.5,
        response_format: str = "json_schema",
        pool: urllib3.PoolManager | None = None,
        replicas: ReplicaSet | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.egress = egress
        self.response_format = response_format
        self.name = name
        self.base_url = base_url
        self.served_name = served_name
        self.api_key = api_key
        self.timeout = urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s)
        self.read_timeout_s = read_timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.pool = pool or call_pool(16)
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._request_headers = {**_DEFAULT_HEADERS, "Content-Type": "application/json",
                                 **self.headers}
        self.replicas = replicas or ReplicaSet(
            name, [base_url], lambda url: check_health(url, api_key, connect_timeout_s))

    def generate(self, request: GenerationRequest) -> Completion:
        return drain(self.stream(request), "OpenAI-compatible")

    def count_tokens(self, text: str) -> int:
        """An estimate: the server's tokenizer is a round-trip away, too dear to route on."""
        return estimate_tokens(text)

    def body(self, request: GenerationRequest) -> dict[str, Any]:
        """The chat completions request, always streamed so usage and TTFT are measured."""
        messages = request.messages or [{"role": "user", "content": request.prompt or ""}]
        body: dict[str, Any] = {
            "model": self.served_name,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            body["stop"] = request.stop
        if request.json_schema is not None and self.response_format == "json_object":
            body["response_format"] = {"type": "json_object", "schema": request.json_schema}
        elif request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.json_schema, "strict": True},
            }
        if request.logprobs:
            body["logprobs"] = True
        if request.tools:  # passed through: the server's model calls them (or refuses, 4xx)
            body["tools"] = request.tools
            body["tool_choice"] = (
                {"type": "function", "function": {"name": request.tool_name}}
                if request.tool_name is not None else request.tool_choice
            )
        return body

    def _open(self, body: dict[str, Any]) -> tuple[urllib3.BaseHTTPResponse, Replica]:
        """Send the request; retry 5xx and connection failures (nothing has streamed yet).

        With replicas, a failing endpoint hands the request to another one at once; a retry
        (with backoff) comes only after every endpoint failed this round.  The error raised
        says whether any try ``reached`` a server (sent, then the connection dropped or the
        answer never came): that server may have generated, so the attempt is not free.
        """
        attempt = 0
        tried: set[str] = set()
        reached = False
        payload = orjson.dumps(body)
        while True:
            failure: str
            replica = self.replicas.acquire(tried)
            assert replica is not None  # ``tried`` holds only failures of this round
            base = replica.url
            if self.egress is not None:
                try:
                    self.egress.check(base)  # at call time too: a name can move
                except InvalidInput as exc:
                    self.replicas.release(replica)
                    raise BackendError(f"{self.name}: {exc.message}") from None
            try:
                response = self.pool.urlopen(
                    "POST", f"{base}/chat/completions", body=payload,
                    headers=self._request_headers, timeout=self.timeout, retries=False,
                    redirect=False, preload_content=False)
            except urllib3.exceptions.HTTPError as exc:
                if _timed_out(exc):
                    self.replicas.release(replica)
                    log.warning("%s: no answer from %s", self.name, base)
                    raise BackendTimeout(
                        f"{self.name}: no answer within {self.read_timeout_s:g}s",
                        reached=reached or _reached(exc),
                    ) from exc
                self.replicas.release(replica)
                self.replicas.mark_down(replica, f"cannot reach {base}: {type(exc).__name__}")
                reached = reached or _reached(exc)
                failure = "dropped connection" if _reached(exc) else "connection"
                error: Exception = exc
            else:
                if response.status < 400:
                    return response, replica
                answer = _read_all(response)
                self.replicas.release(replica)
                status = response.status
                if status < 500:
                    # The remote's words stay in the server log: callers see the status only.
                    log.warning("%s: %s refused the request (HTTP %d): %s", self.name, base,
                                status, _error_message(answer))
                    raise BackendError(
                        f"{self.name}: the endpoint refused the request (HTTP {status})",
                        reached=reached,
                    )
                failure, error = f"HTTP {status}", BackendError(f"HTTP {status}")
            tried.add(base)
            if len(tried) < len(self.replicas.replicas):
                log.warning("%s: %s from %s, trying another replica", self.name, failure, base)
                continue
            if attempt >= self.max_retries:
                where = "the endpoint" if len(tried) == 1 else f"any of {len(tried)} replicas"
                if failure == "connection":
                    raise BackendUnreachable(
                        f"{self.name}: cannot reach {where} ({attempt + 1} attempts)",
                        reached=reached,
                    ) from error
                if failure == "dropped connection":
                    raise BackendUnreachable(
                        f"{self.name}: {where} dropped the connection before answering "
                        f"({attempt + 1} attempts)", reached=True,
                    ) from error
                raise BackendError(
                    f"{self.name}: {where} answered {failure} ({attempt + 1} attempts)",
                    reached=reached,
                ) from error
            delay = self.backoff_s * 2**attempt
            log.warning("%s: %s, retry %d in %.1fs", self.name, failure, attempt + 1, delay)
            time.sleep(delay)
            attempt += 1
            tried = set()

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        body = self.body(request)
        watch = Stopwatch()
        response, replica = self._open(body)
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] | None = None
        logprobs: list[float] = []
        texts: list[str] = []
        calls: list[ToolCallDelta] = []
        n_chunks = 0
        complete = False
        try:
            for line in _lines(response):
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":  # read on to the end, so the connection goes back to the pool
                    complete = True
                    continue
                chunk = json.loads(data)
                if "error" in chunk:
                    raise BackendError(f"{self.name}: stream broke: {chunk['error']}",
                                       reached=True)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                choices = chunk.get("choices")
                if not choices:
                    continue
                choice = choices[0]
                finish = choice.get("finish_reason") or finish
                delta = choice.get("delta") or {}
                piece = delta.get("content")
                lp = choice.get("logprobs")
                if lp and lp.get("content"):
                    logprobs.extend(float(t["logprob"]) for t in lp["content"])
                    texts.extend(str(t.get("token", "")) for t in lp["content"])
                if piece:
                    n_chunks += 1
                    watch.mark_token()
                    parts.append(piece)
                    yield StreamEvent(text=piece)
                for call in delta.get("tool_calls") or []:
                    n_chunks += 1
                    watch.mark_token()
                    calls.append(_tool_delta(call))
                    yield StreamEvent(tool_call=calls[-1])
        except ReadTimeoutError as exc:
            raise BackendTimeout(
                f"{self.name}: stream stalled beyond {self.read_timeout_s:g}s", reached=True
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError, json.JSONDecodeError) as exc:
            if not complete:  # a server that drops the connection after [DONE] lost nothing
                raise BackendError(
                    f"{self.name}: stream broke: {exc.__class__.__name__}", reached=True
                ) from exc
        finally:
            _done_with(response)
            self.replicas.release(replica)
        latency, ttft = watch.finish()
        if usage is not None and usage.get("completion_tokens") is not None:
            n_prompt, n_out = int(usage.get("prompt_tokens") or 0), int(usage["completion_tokens"])
        else:  # server sent no usage: litellm's tokenizer estimate (documented in the README)
            n_prompt, n_out = estimate_prompt_tokens(body["messages"]), n_chunks
        yield StreamEvent(
            completion=Completion(
                text="".join(parts),
                finish_reason=finish,
                prompt_tokens=n_prompt,
                completion_tokens=n_out,
                latency_s=latency,
                ttft_s=ttft,
                model=self.name,
                token_logprobs=logprobs or None,
                token_texts=texts or None,
                tool_calls=join_tool_calls(calls) or None,
            )
        )


def _timed_out(exc: urllib3.exceptions.HTTPError) -> bool:
    """No connection or no answer in time.

    A refused connection is urllib3's subclass of the connect timeout, and is not one.
    """
    return (isinstance(exc, (ReadTimeoutError, ConnectTimeoutError))
            and not isinstance(exc, NewConnectionError))


def _reached(exc: urllib3.exceptions.HTTPError) -> bool:
    """The server may have had the request: the connection broke, or no answer came in time.

    A refused connection, a failed name lookup or a connect timeout never gave it the request.
    urllib3 reads on after a failed write (a server may answer early) and reports what the read
    then meets, so a write cut off by a dying server also counts as reached: the attempt is
    billed its reservation, never less than the server may have spent.
    """
    return isinstance(exc, (ReadTimeoutError, ProtocolError))


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[str]:
    """The body's lines as they arrive: each read takes what is there, so no token waits.

    A byte that is not UTF-8 reads as U+FFFD, as httpx decoded it: a server's bad byte spoils
    one character of the answer, not the call.
    """
    rest = b""
    while chunk := response.read1(_READ):
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for line in lines:
            yield line.decode(errors="replace").rstrip("\r")
    if rest:
        yield rest.decode(errors="replace").rstrip("\r")


def _read_all(response: urllib3.BaseHTTPResponse) -> bytes:
    """An error answer's body, read whole so its connection goes back to the pool.

    Empty when the connection breaks while it is read: the status says what happened.
    """
    try:
        return response.read()
    except urllib3.exceptions.HTTPError:
        return b""
    finally:
        _done_with(response)


def _done_with(response: urllib3.BaseHTTPResponse) -> None:
    """Close a response; its connection goes back to the pool only if it was read to the end.

    urllib3 hands the connection back as soon as the body has been read; a response read
    part-way has its connection closed, since the next request on it would read this one's rest.
    """
    response.close()


def _tool_delta(call: dict[str, Any]) -> ToolCallDelta:
    """One entry of a chunk's ``delta.tool_calls`` (OpenAI's streaming shape)."""
    function = call.get("function") or {}
    return ToolCallDelta(index=int(call.get("index") or 0), id=call.get("id") or None,
                         name=function.get("name") or None,
                         arguments=function.get("arguments") or "")


def _error_message(body: bytes) -> str:
    try:
        error = orjson.loads(body).get("error")
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:200]
    if isinstance(error, dict):
        return str(error.get("message") or error)[:200]
    return str(error)[:200]
