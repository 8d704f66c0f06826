"""Splitting long documents and planning the reduction: pure functions, tested without models.

Token counts come from a caller-supplied counter (the chosen model's tokenizer when cheap); the
default estimate is one token per four characters, rounded up, which over-counts English slightly
and so errs on the side of chunks that fit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

TokenCounter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}")


def _units(text: str) -> list[str]:
    """Sentences (and paragraph breaks), so chunks end where meaning does."""
    return [u for u in (p.strip() for p in _SENTENCE_END.split(text)) if u]


def split_by_tokens(
    text: str,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    count: TokenCounter = estimate_tokens,
) -> list[str]:
    """Chunks of at most ``chunk_tokens`` that repeat ~``overlap_tokens`` of the previous chunk.

    Sentences are kept whole; a single sentence longer than a chunk is cut on words.
    """
    if chunk_tokens < 1:
        raise ValueError("chunk_tokens must be >= 1")
    if not 0 <= overlap_tokens < chunk_tokens:
        raise ValueError("overlap_tokens must be in [0, chunk_tokens)")
    pieces: list[str] = []
    for unit in _units(text):
        if count(unit) <= chunk_tokens:
            pieces.append(unit)
            continue
        words, current = unit.split(), ""
        for word in words:
            candidate = f"{current} {word}".strip()
            if current and count(candidate) > chunk_tokens:
                pieces.append(current)
                current = word
            else:
                current = candidate
        if current:
            pieces.append(current)

    chunks: list[str] = []
    current_units: list[str] = []
    for piece in pieces:
        candidate = " ".join([*current_units, piece])
        if current_units and count(candidate) > chunk_tokens:
            chunks.append(" ".join(current_units))
            carry: list[str] = []
            for unit in reversed(current_units):  # overlap: the tail of the previous chunk
                if count(" ".join([unit, *carry, piece])) > chunk_tokens:
                    break
                if count(" ".join([unit, *carry])) > overlap_tokens:
                    break
                carry.insert(0, unit)
            current_units = [*carry, piece]
        else:
            current_units.append(piece)
    if current_units:
        chunks.append(" ".join(current_units))
    return chunks


def group_for_reduction(
    summaries: Sequence[str], *, budget_tokens: int, count: TokenCounter = estimate_tokens
) -> list[list[str]]:
    """Pack consecutive summaries into groups that each fit one reduce call.

    Always makes progress: every group holds at least two summaries when there are two or more,
    so each level of the hierarchy strictly shrinks the list.
    """
    groups: list[list[str]] = []
    current: list[str] = []
    for summary in summaries:
        if len(current) >= 2 and count("\n".join([*current, summary])) > budget_tokens:
            groups.append(current)
            current = []
        current.append(summary)
    if current:
        if len(current) == 1 and groups:
            groups[-1].append(current[0])
        else:
            groups.append(current)
    return groups


def fits(
    summaries: Sequence[str], budget_tokens: int, count: TokenCounter = estimate_tokens
) -> bool:
    return count("\n".join(summaries)) <= budget_tokens


def opening(text: str, words: int) -> str:
    """The first ``words`` words of ``text``, cut back to the last sentence end among them.

    What stands in for a summary when no model produced one (doc-summary's last resort).
    """
    tokens = text.split()
    if len(tokens) <= words:
        return " ".join(tokens)
    head = tokens[:words]
    ends = [i for i, word in enumerate(head) if word.endswith((".", "!", "?"))]
    return " ".join(head[: ends[-1] + 1] if ends else head)
