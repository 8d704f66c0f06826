"""Splitting and reduction planning, without models."""

from __future__ import annotations

import itertools

import pytest
from modelyard_agents.text import (
    estimate_tokens,
    fits,
    group_for_reduction,
    opening,
    split_by_tokens,
)


def words(n: int, start: int = 0) -> str:
    return " ".join(f"w{i}." for i in range(start, start + n))


def count_words(text: str) -> int:
    return len(text.split())


def test_chunks_respect_the_budget_and_cover_every_sentence() -> None:
    text = words(100)
    chunks = split_by_tokens(text, chunk_tokens=10, overlap_tokens=3, count=count_words)
    assert all(count_words(c) <= 10 for c in chunks)
    seen = {w for c in chunks for w in c.split()}
    assert seen == set(text.split())


def test_consecutive_chunks_overlap() -> None:
    chunks = split_by_tokens(words(40), chunk_tokens=10, overlap_tokens=3, count=count_words)
    assert len(chunks) > 3
    for before, after in itertools.pairwise(chunks):
        shared = set(before.split()) & set(after.split())
        assert 1 <= len(shared) <= 3


def test_no_overlap_means_a_partition() -> None:
    chunks = split_by_tokens(words(30), chunk_tokens=10, overlap_tokens=0, count=count_words)
    assert sum(count_words(c) for c in chunks) == 30


def test_a_sentence_longer_than_a_chunk_is_cut_on_words() -> None:
    long_sentence = " ".join(f"x{i}" for i in range(25)) + "."
    chunks = split_by_tokens(long_sentence, chunk_tokens=10, overlap_tokens=0, count=count_words)
    assert len(chunks) == 3 and all(count_words(c) <= 10 for c in chunks)


def test_short_text_is_one_chunk() -> None:
    assert split_by_tokens("Hello there. Bye.", chunk_tokens=50, overlap_tokens=5) == [
        "Hello there. Bye."
    ]


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        split_by_tokens("a", chunk_tokens=0, overlap_tokens=0)
    with pytest.raises(ValueError):
        split_by_tokens("a", chunk_tokens=5, overlap_tokens=5)


def test_reduction_groups_fit_and_always_shrink() -> None:
    summaries = [words(4, i * 4) for i in range(9)]
    level = summaries
    levels = 0
    while not fits(level, 10, count_words):
        groups = group_for_reduction(level, budget_tokens=10, count=count_words)
        assert sum(len(g) for g in groups) == len(level)
        assert all(len(g) >= 2 for g in groups)
        level = [words(4) for _ in groups]  # each group reduces to one summary
        levels += 1
        assert levels < 10
    assert levels >= 2  # 9 -> 4 -> 2 -> fits


def test_estimate_is_four_characters_per_token_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2


def test_opening_stops_at_a_sentence_end_within_the_budget() -> None:
    text = "The office moved in March. Rent fell by 18 percent. Forty staff work there now."
    assert opening(text, 10) == "The office moved in March. Rent fell by 18 percent."
    assert opening(text, 9) == "The office moved in March."
    assert opening(text, 4) == "The office moved in"  # no sentence end among them: the words
    assert opening("  One   short\nline. ", 10) == "One short line."  # whole, spaces folded
