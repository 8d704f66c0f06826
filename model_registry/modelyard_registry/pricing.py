"""What a model call costs, before (expected) and after (actual): pure arithmetic, no I/O.

Remote models are priced by the token, as their providers bill them.  Local models are not free:
they hold this machine for as long as they run, so they cost wall time x the configured machine
cost per hour (``Settings.machine_cost_per_hour``).  A slow local model can therefore cost more
than a fast remote one.

Expected local time is ``prompt_tokens / prefill_rate + max_output_tokens / tokens_per_s``:
generation speed is measured by the eval suites (``Score.tokens_per_s``); the prefill rate
(prompt tokens per second) is derived from the same Score rows, see ``prefill_rate``.  Budgeting
the full ``max_output_tokens`` is deliberately pessimistic: a call may stop early, never later.
"""

from __future__ import annotations

import math

PER_MILLION = 1_000_000.0
SECONDS_PER_HOUR = 3600.0


def remote_cost(
    prompt_tokens: int, completion_tokens: int, price_in: float, price_out: float
) -> float:
    """USD for a call billed per token (prices are USD per million tokens)."""
    return prompt_tokens * price_in / PER_MILLION + completion_tokens * price_out / PER_MILLION


def local_cost(latency_s: float, machine_cost_per_hour: float) -> float:
    """USD for a call that held this machine for ``latency_s`` seconds."""
    return max(latency_s, 0.0) * machine_cost_per_hour / SECONDS_PER_HOUR


def expected_local_seconds(
    prompt_tokens: int, max_output_tokens: int, tokens_per_s: float, prefill_tokens_per_s: float
) -> float:
    """Seconds a local call is expected to take when it generates all ``max_output_tokens``."""
    return prompt_tokens / prefill_tokens_per_s + max_output_tokens / tokens_per_s


def expected_local_cost(
    prompt_tokens: int,
    max_output_tokens: int,
    tokens_per_s: float,
    prefill_tokens_per_s: float,
    machine_cost_per_hour: float,
) -> float:
    """USD a local call is expected to cost (see the module docstring for the estimate)."""
    seconds = expected_local_seconds(
        prompt_tokens, max_output_tokens, tokens_per_s, prefill_tokens_per_s
    )
    return local_cost(seconds, machine_cost_per_hour)


def prefill_rate(
    *,
    latency_s: float | None,
    prompt_tokens_mean: float | None,
    completion_tokens_mean: float | None,
    tokens_per_s: float | None,
) -> float | None:
    """Measured prompt tokens per second, derived from one Score row's means.

    The eval runner stores ``tokens_per_s`` as the generation rate after the first token
    (``sum(completion_tokens - 1) / sum(latency - ttft)``), so the mean time to first token is
    ``latency_s - (completion_tokens_mean - 1) / tokens_per_s``, which is prompt processing (plus
    the first token).  ``None`` when the row lacks a figure or the derivation is not positive.
    """
    if not latency_s or not prompt_tokens_mean or not completion_tokens_mean or not tokens_per_s:
        return None
    ttft = latency_s - max(completion_tokens_mean - 1.0, 0.0) / tokens_per_s
    if ttft <= 1e-6 or not math.isfinite(ttft):
        return None
    return prompt_tokens_mean / ttft


def estimate_tokens(text: str) -> int:
    """Documented estimate when no tokenizer is at hand: one token per 4 characters, rounded up.

    English text with BPE tokenizers averages 3.5-4.5 characters a token; the estimate only sizes
    context windows and expected cost, never billing (billing uses the backend's counts).
    """
    return (len(text) + 3) // 4
