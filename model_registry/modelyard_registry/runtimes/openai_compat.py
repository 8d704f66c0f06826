"""Remote models behind any OpenAI-compatible server (vLLM, llama.cpp server, ...) via litellm.

litellm gives one client for every OpenAI-style server; we keep control of the parts that matter
for a router: explicit connect/read timeouts, retries only where a retry can help (5xx and
connection failures, before any token arrived), and never phoning home for a cost map.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai

from ..errors import BackendError, BackendTimeout, BackendUnreachable
from ..pricing import estimate_tokens
from .base import Completion, GenerationRequest, Stopwatch, StreamEvent, drain

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

log = logging.getLogger(__name__)


def _litellm() -> Any:
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def check_health(base_url: str, api_key: str | None, timeout_s: float) -> tuple[bool, str | None]:
    """A model server is healthy when ``GET {base_url}/models`` answers 200 in time."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{base_url}/models", headers=headers, timeout=timeout_s)
    except httpx.TimeoutException:
        return False, f"no answer from {base_url} within {timeout_s:g}s"
    except httpx.HTTPError as exc:
        return False, f"cannot reach {base_url}: {exc.__class__.__name__}"
    if response.status_code != 200:
        return False, f"{base_url}/models answered HTTP {response.status_code}"
    return True, None


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
    ) -> None:
        self.response_format = response_format
        self.name = name
        self.base_url = base_url
        self.served_name = served_name
        self.api_key = api_key
        self.timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self.read_timeout_s = read_timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s

    def generate(self, request: GenerationRequest) -> Completion:
        return drain(self.stream(request), "OpenAI-compatible")

    def count_tokens(self, text: str) -> int:
        """An estimate: the server's tokenizer is a network round-trip away, too dear to route on."""
        return estimate_tokens(text)

    def _kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        messages = request.messages or [{"role": "user", "content": request.prompt or ""}]
        kwargs: dict[str, Any] = {
            "model": f"openai/{self.served_name}",
            "api_base": self.base_url,
            "api_key": self.api_key or "not-needed",
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "timeout": self.timeout,
            "max_retries": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            kwargs["stop"] = request.stop
        if request.json_schema is not None and self.response_format == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        elif request.json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.json_schema, "strict": True},
            }
        if request.logprobs:
            kwargs["logprobs"] = True
        return kwargs

    def _open(self, kwargs: dict[str, Any]) -> Any:
        litellm = _litellm()
        retryable = (
            litellm.InternalServerError,
            litellm.ServiceUnavailableError,
            litellm.BadGatewayError,
            litellm.APIConnectionError,
        )
        attempt = 0
        while True:
            try:
                return litellm.completion(**kwargs)
            except litellm.Timeout as exc:
                raise BackendTimeout(
                    f"{self.name}: no answer from {self.base_url} within {self.read_timeout_s:g}s"
                ) from exc
            except retryable as exc:
                if attempt >= self.max_retries:
                    raise _classify(self.name, self.base_url, exc, attempt + 1) from exc
                delay = self.backoff_s * 2**attempt
                log.warning("%s: %s, retry %d in %.1fs", self.name, type(exc).__name__,
                            attempt + 1, delay)
                time.sleep(delay)
                attempt += 1
            except openai.APIError as exc:  # every litellm error subclasses the openai ones
                status = getattr(exc, "status_code", None)
                raise BackendError(
                    f"{self.name}: {self.base_url} refused the request"
                    + (f" (HTTP {status})" if status else "") + f": {exc.__class__.__name__}"
                ) from exc

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        kwargs = self._kwargs(request)
        watch = Stopwatch()
        response = self._open(kwargs)
        litellm = _litellm()
        parts: list[str] = []
        finish: str | None = None
        usage: Any = None
        logprobs: list[float] = []
        n_chunks = 0
        try:
            for chunk in response:
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                piece = choice.delta.content if choice.delta else None
                lp = getattr(choice, "logprobs", None)
                if lp is not None and getattr(lp, "content", None):
                    logprobs.extend(t.logprob for t in lp.content)
                if piece:
                    n_chunks += 1
                    watch.mark_token()
                    parts.append(piece)
                    yield StreamEvent(text=piece)
        except litellm.Timeout as exc:
            raise BackendTimeout(
                f"{self.name}: stream stalled beyond {self.read_timeout_s:g}s"
            ) from exc
        except openai.APIError as exc:
            raise BackendError(f"{self.name}: stream broke: {exc.__class__.__name__}") from exc
        latency, ttft = watch.finish()
        text = "".join(parts)
        if usage is not None and usage.completion_tokens is not None:
            n_prompt, n_out = int(usage.prompt_tokens or 0), int(usage.completion_tokens)
        else:  # server sent no usage: litellm's tokenizer estimate (documented in the README)
            messages = kwargs["messages"]
            n_prompt = int(litellm.token_counter(model="gpt-3.5-turbo", messages=messages))
            n_out = n_chunks
        yield StreamEvent(
            completion=Completion(
                text=text,
                finish_reason=finish,
                prompt_tokens=n_prompt,
                completion_tokens=n_out,
                latency_s=latency,
                ttft_s=ttft,
                model=self.name,
                token_logprobs=logprobs or None,
            )
        )


def _caused_by_connection(exc: BaseException) -> bool:
    """Litellm reports a refused connection as InternalServerError(500); the chain tells."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx.TransportError | openai.APIConnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _classify(name: str, base_url: str, exc: Exception, attempts: int) -> BackendError:
    if _caused_by_connection(exc):
        return BackendUnreachable(f"{name}: cannot reach {base_url} ({attempts} attempts)")
    status = getattr(exc, "status_code", None) or "5xx"
    return BackendError(f"{name}: {base_url} answered HTTP {status} ({attempts} attempts)")
