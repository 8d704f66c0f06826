"""The one interface both backends implement: a request in, a measured completion out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import BackendError


@dataclass(frozen=True)
class GenerationRequest:
    """Chat ``messages`` or a raw ``prompt`` (completion-only models), plus sampling limits."""

    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    logprobs: bool = False

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of messages or prompt")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    ttft_s: float
    model: str
    token_logprobs: list[float] | None = None

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second of wall time, prompt processing included."""
        return self.completion_tokens / self.latency_s if self.latency_s > 0 else 0.0


@dataclass
class StreamEvent:
    """A piece of text as it arrives; the last event carries the finished ``completion``."""

    text: str = ""
    completion: Completion | None = None


class Runtime(Protocol):
    def generate(self, request: GenerationRequest) -> Completion: ...

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]: ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model: exact where the backend holds the tokenizer.

        Routing prices a call by its prompt tokens; it asks only runtimes whose model is loaded
        (``RuntimeFactory.loaded``), and estimates the rest.
        """
        ...


@dataclass
class Stopwatch:
    """Measures latency and time-to-first-token the same way for every backend."""

    start: float = field(default_factory=time.perf_counter)
    first: float | None = None

    def mark_token(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def finish(self) -> tuple[float, float]:
        end = time.perf_counter()
        return end - self.start, (self.first or end) - self.start


def drain(events: Iterator[StreamEvent], backend: str = "backend") -> Completion:
    """Run a stream to its end and return the final completion.

    Each runtime's ``generate`` is its ``stream`` drained, so the two never disagree on text,
    usage or timings.
    """
    for event in events:
        if event.completion is not None:
            return event.completion
    raise BackendError(f"{backend} stream ended without a completion")
