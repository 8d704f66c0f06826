"""Which of a model's Scores for a kind stands for it: the newest suite, then the most items.

A 10-item quick evaluation run after the 150-item full one used to replace it in routing and in
the listings (the newest row won).  The rule (``scores.current_scores``) is pure, so it is tested
on hand-built rows first, then through the real catalogue: the router's snapshot, the listing
shape and the evaluation status all read the same row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from modelyard_registry import catalog
from modelyard_registry.evals.runner import ItemResult, SuiteResult, store_score
from modelyard_registry.routing.confidence import routed_score
from modelyard_registry.routing.snapshot import load_candidates
from modelyard_registry.routing.training import score_priors
from modelyard_registry.scores import Score, current_scores, suite_measured
from modelyard_registry.scores_view import public_models, scores_by_model
from modelyard_registry.settings import Settings
from sqlmodel import Session

T0 = datetime(2026, 1, 1)


def _row(version: str, value: float, n: int, minutes: int, kind: str = "classify",
         model: str = "m") -> Score:
    return Score(model_name=model, kind=kind, metric="accuracy", value=value, n=n, ci_low=0.0,
                 ci_high=1.0, suite_version=version, created_at=T0 + timedelta(minutes=minutes))


def _pick(*rows: Score) -> Score:
    return current_scores(rows)[("m", "classify")]


def test_partial_runs_measure_the_suite_they_sample() -> None:
    assert suite_measured("classify-1a2b:sample10") == "classify-1a2b"
    assert suite_measured("classify-1a2b:first3") == "classify-1a2b"  # older releases' rows
    assert suite_measured("classify-1a2b") == "classify-1a2b"
    assert suite_measured("tickets-9f:sample") == "tickets-9f:sample"  # no count: not partial


def test_a_later_quick_eval_does_not_replace_the_full_one() -> None:
    full = _row("classify-a", 0.80, 150, minutes=0)
    quick = _row("classify-a:sample10", 1.0, 10, minutes=5)
    assert _pick(full, quick) is full
    assert _pick(quick, full) is full  # input order does not matter


def test_a_full_run_after_a_quick_one_takes_over() -> None:
    quick = _row("classify-a:sample10", 0.9, 10, minutes=0)
    full = _row("classify-a", 0.7, 150, minutes=5)
    assert _pick(quick, full) is full


def test_the_newest_row_breaks_a_tie_in_items() -> None:
    older = _row("classify-a:sample10", 0.5, 10, minutes=0)
    newer = _row("classify-a:first10", 0.9, 10, minutes=5)
    assert _pick(newer, older) is newer
    # same timestamp: the later insert (higher id) is the newer
    first, second = _row("classify-a", 0.5, 20, 0), _row("classify-a", 0.6, 20, 0)
    first.id, second.id = 1, 2
    assert _pick(second, first) is second


def test_a_newer_suite_supersedes_the_old_suites_rows() -> None:
    """An edited suite file has a new hash: its quick run outranks the old file's full run."""
    old_full = _row("classify-a", 0.8, 150, minutes=0)
    new_quick = _row("classify-b:sample10", 0.6, 10, minutes=5)
    assert _pick(old_full, new_quick) is new_quick
    # ...and within the new suite the most items still win
    new_full = _row("classify-b", 0.7, 150, minutes=6)
    newest_quick = _row("classify-b:sample10", 0.9, 10, minutes=7)
    assert _pick(old_full, new_quick, new_full, newest_quick) is new_full


def test_each_model_and_kind_is_chosen_on_its_own() -> None:
    rows = [_row("classify-a", 0.8, 150, 0), _row("qa-a:sample10", 0.5, 10, 1, kind="qa"),
            _row("classify-a:sample10", 1.0, 10, 2, model="other")]
    chosen = current_scores(rows)
    assert set(chosen) == {("m", "classify"), ("m", "qa"), ("other", "classify")}
    assert chosen[("m", "classify")].n == 150 and chosen[("other", "classify")].n == 10
    assert current_scores([]) == {}


def _result(version: str, hits: int, n: int) -> SuiteResult:
    result = SuiteResult("m", "classify", version)
    for i in range(n):
        result.items.append(ItemResult(f"c{i}", float(i < hits), "x", 100, 6, 0.5, 0.1))
    return result


def test_router_listing_and_priors_read_the_full_eval_after_a_quick_one(
    session: Session, settings: Settings,
) -> None:
    catalog.add_model(session, catalog.ModelCreate(
        name="m", backend=catalog.Backend.llama_cpp, gguf_path="/nowhere/m.gguf",
        capabilities=["chat", "json_schema"], context_length=2048, ram_bytes=10,
    ))
    store_score(session, _result("classify-a", 120, 150))  # full: 0.80 over 150
    store_score(session, _result("classify-a:sample10", 10, 10))  # later quick: 10/10

    [candidate] = load_candidates(session, settings)
    assert candidate.scores["classify"] == pytest.approx(routed_score(0.8, 150))
    shown = scores_by_model(session)["m"]["classify"]
    assert shown["n"] == 150 and shown["suite_version"] == "classify-a"
    [public] = public_models(session, settings)
    assert public.evaluation == "full"  # the quick row no longer makes the model look partial
    assert score_priors(session) == {("m", "classify"): pytest.approx(0.8)}
