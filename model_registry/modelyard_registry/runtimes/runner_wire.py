"""The messages between a llama.cpp runner process and its parent, one connection per call.

Both ends import this module, so the messages are plain frozen dataclasses pickled by
``multiprocessing.connection`` over a Unix socket that only this user can reach.  A call is one
request message, then (for a generation) ``Pieces`` as text is sampled and one ``Done`` or
``Failed``.  The parent cancels by closing the connection: the runner checks for that once per
sampled token and stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .base import ToolCallDelta, ToolChoice

# llama.cpp's server (and llama_cpp.server, our stand-in for vLLM) penalise repeats by 1.1;
# llama-cpp-python's in-process default is 1.0, with which small models loop inside JSON strings
# until max_tokens.  The same weights should behave the same local or served.
REPEAT_PENALTY = 1.1


@dataclass(frozen=True)
class Generate:
    """Run one completion; ``messages`` are rendered with the GGUF's chat template.

    With ``tools`` the answer is text or one tool call (``tool_calls``), sent as
    ``ToolCallDelta`` messages instead of ``Pieces``.
    """

    messages: list[dict[str, Any]] | None
    prompt: str | None
    max_tokens: int
    temperature: float
    stop: list[str]
    json_schema: dict[str, Any] | None
    logprobs: bool
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice = "auto"
    tool_name: str | None = None


@dataclass(frozen=True)
class Tokenize:
    """Count the tokens of ``text``; served beside a running generation, never behind it."""

    text: str


@dataclass(frozen=True)
class Pieces:
    """Text sampled since the last message (several tokens' worth when they come fast)."""

    text: str


@dataclass(frozen=True)
class Done:
    """The end of a generation; ``ttft_s`` counts from the request's arrival in the runner.

    ``queued_s``: of that, the time spent waiting for a CPU slot (``cpu_slots``).
    """

    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    token_logprobs: list[float] | None
    queued_s: float = 0.0
    token_texts: list[str] | None = None


@dataclass(frozen=True)
class Counted:
    tokens: int


FailureKind = Literal["invalid_input", "capability_missing", "backend_error"]


@dataclass(frozen=True)
class Failed:
    """A Python-level failure inside the runner; the runner itself stays up."""

    kind: FailureKind
    message: str


Request = Generate | Tokenize
Reply = Pieces | ToolCallDelta | Done | Counted | Failed
