"""The one interface both backends implement: a request in, a measured completion out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..errors import BackendError

ToolChoice = Literal["auto", "required"]


@dataclass(frozen=True)
class GenerationRequest:
    """Chat ``messages`` or a raw ``prompt`` (completion-only models), plus sampling limits.

    ``tools`` are OpenAI function tools; ``tool_choice`` "auto" lets the model answer in text
    or call one, "required" makes it call one, and ``tool_name`` forces that function.
    Messages may carry OpenAI's tool fields (an assistant's ``tool_calls``, a ``tool`` role's
    ``tool_call_id``), hence ``Any`` values.
    """

    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    logprobs: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice = "auto"
    tool_name: str | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of messages or prompt")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")


@dataclass(frozen=True)
class ToolCall:
    """One function call the model made; ``arguments`` is JSON text, as OpenAI sends it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call as it streams (OpenAI's ``delta.tool_calls``).

    The first piece of a call carries its id and name, the following ones more of its
    ``arguments`` text.
    """

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


def join_tool_calls(deltas: list[ToolCallDelta]) -> list[ToolCall]:
    """The calls a stream of deltas spelled out, in index order."""
    calls: dict[int, list[str]] = {}
    for d in deltas:
        entry = calls.setdefault(d.index, ["", "", ""])
        entry[0] = d.id or entry[0]
        entry[1] = d.name or entry[1]
        entry[2] += d.arguments
    return [ToolCall(id=i, name=n, arguments=a) for _, (i, n, a) in sorted(calls.items())]


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
    tool_calls: list[ToolCall] | None = None
    queued_s: float = 0.0
    """Local models: time waiting for a CPU slot, not included in ``latency_s`` or ``ttft_s``."""
    token_texts: list[str] | None = None
    """With ``token_logprobs``: each sampled token's text, so a check can find the token that
    decided a value (``validators.value_probability``)."""

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second of wall time, prompt processing included."""
        return self.completion_tokens / self.latency_s if self.latency_s > 0 else 0.0


@dataclass
class StreamEvent:
    """A piece of text (or of a tool call) as it arrives.

    The last event carries the finished ``completion``.
    """

    text: str = ""
    completion: Completion | None = None
    tool_call: ToolCallDelta | None = None


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
