"""Eval suites: the shipped data, the metrics and intervals, and real runs that store Scores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
from modelyard_registry import catalog
from modelyard_registry.cli.app import app
from modelyard_registry.evals import SUITE_KINDS, evaluate_model, load_suite
from modelyard_registry.evals.metrics import (
    bootstrap_interval,
    checkable_terms,
    content_tokens,
    fact_covered,
    qa_match,
    rouge_l_f1,
    score_classify,
    score_doc_summary,
    score_extract,
    score_qa,
    score_summarize,
    wilson_interval,
)
from modelyard_registry.evals.prompts import build_request, label_schema
from modelyard_registry.evidence import EvalOutcome
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.scores import Score
from modelyard_registry.settings import Settings
from sqlmodel import Session, select
from typer.testing import CliRunner

runner = CliRunner()


def yard(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


# --- the shipped suites ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SUITE_KINDS)
def test_suite_is_shipped_well_formed_and_big_enough(kind: str) -> None:
    suite = load_suite(kind)
    assert len(suite.items) >= 40
    ids = [item["id"] for item in suite.items]
    assert len(set(ids)) == len(ids)
    assert suite.version.startswith(f"{kind}-") and len(suite.version) == len(kind) + 13
    assert load_suite(kind).sample(5).version == f"{suite.version}:sample5"


def test_classify_gold_is_one_of_the_labels() -> None:
    for item in load_suite("classify").items:
        assert len(item["labels"]) >= 2 and item["gold"] in item["labels"], item["id"]
        assert score_classify(json.dumps({"label": item["gold"]}), item) == 1.0


def test_extract_gold_obeys_its_schema_and_the_grammar_compiles() -> None:
    from modelyard_registry.runtimes.json_grammar import schema_grammar

    for item in load_suite("extract").items:
        jsonschema.validate(item["gold"], item["schema"])
        assert score_extract(json.dumps(item["gold"]), item) == 1.0, item["id"]
        schema_grammar(item["schema"])


def test_references_cover_their_key_facts() -> None:
    items = load_suite("summarize").items
    coverage = [score_summarize(item["reference"], item) for item in items]
    assert all(item["key_facts"] for item in items)
    assert sum(coverage) / len(coverage) >= 0.8  # the metric recognises a good summary
    assert sum(score_summarize("", item) for item in items) == 0.0


def test_gold_answers_match_themselves() -> None:
    for item in load_suite("qa").items:
        assert item["answers"] and all(isinstance(a, str) and a for a in item["answers"])
        assert score_qa(item["answers"][0], item) == 1.0, item["id"]


# --- metrics and intervals ---------------------------------------------------------------------


def test_wilson_interval() -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson_interval(0, 10)[0] == 0.0 and 0 < wilson_interval(0, 10)[1] < 0.35
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_bootstrap_interval_is_reproducible_and_brackets_the_mean() -> None:
    values = [0.0, 0.25, 0.5, 1.0, 1.0, 0.75, 0.5, 0.0, 1.0, 0.5]
    low, high = bootstrap_interval(values)
    assert low < sum(values) / len(values) < high
    assert bootstrap_interval(values) == (low, high)
    assert bootstrap_interval([0.5, 0.5]) == (0.5, 0.5)


def test_qa_match() -> None:
    assert qa_match("The Eiffel Tower.", "eiffel tower")
    assert qa_match("It lasts 24 months.", "24 months")
    assert not qa_match("25 months", "24 months")
    long = "The warranty, which was introduced last year after many customer complaints, " \
           "lasts 24 months"
    assert not qa_match(long, "24 months")


def test_extract_scores_fields_separately() -> None:
    item = {"gold": {"name": "Ana Silva", "qty": 3, "tags": ["a", "b"]}}
    assert score_extract('{"name": "ana silva", "qty": 3.0, "tags": ["b", "a"]}', item) == 1.0
    assert score_extract('{"name": "Ana", "qty": 3, "tags": ["a"]}', item) == pytest.approx(1 / 3)
    assert score_extract("not json", item) == 0.0


def test_key_facts_and_rouge() -> None:
    summary = set(content_tokens("Refunds are issued within 14 days to the original card."))
    assert fact_covered("refund within 14 days", summary)
    assert not fact_covered("store credit only", summary)
    assert rouge_l_f1("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert 0 < rouge_l_f1("a cat sat", "the cat sat on the mat") < 1


LIBRARY = (
    "The town of Marlow Bridge opened its new public library on 12 September after two years of "
    "construction. The building cost 4.2 million euros, most of it paid by a regional culture "
    "grant.\n\nThe library holds 38,000 books and has a children's floor with a reading garden. It "
    "is open seven days a week, and on Sundays it runs free coding classes for teenagers.\n\nThe "
    "mayor said the old library, which flooded twice in the last decade, will be turned into a "
    "community kitchen."
)
LIBRARY_FACTS = ["library opened 12 September", "cost 4.2 million euros", "38,000 books",
                 "free coding classes"]
LIBRARY_SUMMARY = ("Marlow Bridge's new library opened on 12 September. It cost 4.2 million euros, "
                   "holds 38000 books and offers free coding classes.")
LIBRARY_POINTS = ["Library opened 12 September", "Cost 4.2 million euros", "38,000 books",
                  "Free Sunday coding classes"]


def doc_summary(summary: str, points: list[str]) -> float:
    return score_doc_summary(summary, points, LIBRARY, LIBRARY_FACTS, target_words=80).value


def test_doc_summary_rewards_a_faithful_brief_summary() -> None:
    score = score_doc_summary(LIBRARY_SUMMARY, LIBRARY_POINTS, LIBRARY, LIBRARY_FACTS, 80)
    assert (score.coverage, score.faithfulness, score.novelty, score.brevity) == (1, 1, 1, 1)
    assert doc_summary("", []) == 0.0
    assert doc_summary("The library is nice.", ["It is new."]) == 0.0  # no key fact


def test_doc_summary_penalises_what_the_document_does_not_say() -> None:
    faithful = doc_summary(LIBRARY_SUMMARY, LIBRARY_POINTS)
    invented_figure = doc_summary(LIBRARY_SUMMARY + " It employs 45 librarians.", LIBRARY_POINTS)
    invented_name = doc_summary(LIBRARY_SUMMARY, [*LIBRARY_POINTS, "Opened by mayor Anna Berg"])
    invented_claim = doc_summary(LIBRARY_SUMMARY, [
        *LIBRARY_POINTS, "The council plans to expand it with a swimming pool next year"])
    assert max(invented_figure, invented_name, invented_claim) < faithful
    paraphrase = "Open 7 days, with free Sunday coding classes for teenagers"
    assert doc_summary(LIBRARY_SUMMARY, [*LIBRARY_POINTS, paraphrase]) == faithful
    # terms a summary may rephrase or capitalise freely are not checked
    assert checkable_terms("Overall, the library holds 38,000 books.") == ({"38000"}, set())


def test_doc_summary_penalises_repeats_and_copying() -> None:
    faithful = doc_summary(LIBRARY_SUMMARY, LIBRARY_POINTS)
    assert doc_summary(LIBRARY_SUMMARY, LIBRARY_POINTS + LIBRARY_POINTS[:2]) < faithful
    repeated = LIBRARY_SUMMARY + " The new library opened on 12 September."
    assert doc_summary(repeated, LIBRARY_POINTS) < faithful
    pasted = score_doc_summary(LIBRARY, LIBRARY_POINTS, LIBRARY, LIBRARY_FACTS, 80)
    assert pasted.coverage == 1.0 and pasted.value < faithful  # the document pasted back
    padded = score_doc_summary(
        LIBRARY_SUMMARY + " It has a children's floor with a reading garden and is open seven "
        "days a week. The old library, which flooded twice in the last decade, will become a "
        "community kitchen.", LIBRARY_POINTS, LIBRARY, LIBRARY_FACTS, 80)
    assert padded.faithfulness == padded.novelty == 1.0 and padded.value < faithful


def test_prompts_use_schemas_and_suit_the_model() -> None:
    item = load_suite("classify").items[0]
    chat = build_request("classify", item, chat=True)
    plain = build_request("classify", item, chat=False)
    assert chat.messages is not None and chat.json_schema == label_schema(item["labels"])
    assert plain.prompt is not None and plain.prompt.rstrip().endswith("Answer:")
    assert plain.json_schema == chat.json_schema
    extract = load_suite("extract").items[0]
    assert build_request("extract", extract, chat=False).json_schema == extract["schema"]


# --- real runs ---------------------------------------------------------------------------------


def _scores(session: Session) -> list[tuple[str, str, str, float, int]]:
    session.expire_all()
    return sorted((s.model_name, s.kind, s.suite_version, s.value, s.n)
                  for s in session.exec(select(Score)).all())


@pytest.fixture
def smol(session: Session, smollm2_path: Path) -> str:
    catalog.add_model(session, catalog.ModelCreate(
        name="smol", backend=catalog.Backend.llama_cpp, gguf_path=str(smollm2_path),
        context_length=8192, capabilities=["chat", "completion", "json_schema"],
        ram_bytes=smollm2_path.stat().st_size + 64 * 2**20,
    ))
    return "smol"


@pytest.mark.slow
def test_yard_models_eval_smollm2_stores_scores_and_replaces_them(
    smol: str, session: Session
) -> None:
    code, out, err = yard("models", "eval", smol, "--suite", "classify", "--suite", "qa",
                          "--limit", "3", "--json")
    assert code == 0, err
    results = {r["kind"]: r for r in json.loads(out)}
    assert set(results) == {"classify", "qa"}
    for kind, r in results.items():
        assert r["n"] == 3 and r["suite_version"].endswith(":sample3")
        assert r["metric"] == {"classify": "accuracy", "qa": "fuzzy_match"}[kind]
        assert 0.0 <= r["ci_low"] <= r["value"] <= r["ci_high"] <= 1.0
        assert r["tokens_per_s"] > 0 and r["latency_s"] > 0 and r["prompt_tokens_mean"] > 0
        # accuracy-type: Wilson interval of (value * n) successes in n
        low, high = wilson_interval(round(r["value"] * 3), 3)
        assert (r["ci_low"], r["ci_high"]) == (round(low, 4), round(high, 4))
    first = _scores(session)
    assert [(m, k, n) for m, k, _, _, n in first] == [("smol", "classify", 3), ("smol", "qa", 3)]
    items = session.exec(select(EvalOutcome)).all()  # per-item evidence beside each Score
    assert sorted((i.suite, i.kind) for i in items) == [("classify", "classify")] * 3 + [
        ("qa", "qa")] * 3
    assert all(i.text and 0 <= i.score <= 1 and i.cost_usd > 0 and i.completion_tokens > 0
               for i in items)

    # shown by `yard models show` / list through scores_view
    code, out, _ = yard("models", "show", smol, "--json")
    assert set(json.loads(out)["scores"]) == {"classify", "qa"}

    # re-running the same suite version replaces, never duplicates
    code, _, err = yard("models", "eval", smol, "--suite", "classify", "--limit", "3", "--json")
    assert code == 0, err
    assert _scores(session) == first
    session.expire_all()
    assert len(session.exec(select(EvalOutcome)).all()) == 6


@pytest.mark.slow
def test_eval_of_a_completion_only_model_uses_plain_prompts(
    session: Session, settings: Settings, gemma_path: Path
) -> None:
    catalog.add_model(session, catalog.ModelCreate(
        name="gemma", backend=catalog.Backend.llama_cpp, gguf_path=str(gemma_path),
        context_length=32768, capabilities=["completion", "json_schema"],
        ram_bytes=gemma_path.stat().st_size + 64 * 2**20,
    ))
    runtimes = RuntimeFactory(settings)
    try:
        [result] = evaluate_model(session, runtimes, "gemma", kinds=["extract"], limit=2)
    finally:
        runtimes.close()
    assert result.n == 2 and 0.0 <= result.value <= 1.0
    for item, out in zip(load_suite("extract").sample(2).items, result.items, strict=True):
        jsonschema.validate(json.loads(out.output), item["schema"])  # grammar-constrained
    [row] = session.exec(select(Score)).all()
    assert row.model_name == "gemma" and row.metric == "field_accuracy"
    assert row.tokens_per_s is not None and row.tokens_per_s > 0
    assert row.ci_low <= row.value <= row.ci_high
    assert not math.isnan(row.ci_low)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["smol", "--suite", "chat"], "no eval suite for 'chat'"),
        (["smol", "--suite", "poetry"], "no eval suite for 'poetry'"),
        (["smol", "--limit", "0"], "--limit must be >= 1"),
        (["ghost"], "unknown model 'ghost'"),
    ],
)
def test_eval_bad_input_exits_2_and_stores_nothing(
    smol: str, session: Session, args: list[str], message: str
) -> None:
    code, _, err = yard("models", "eval", *args)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert _scores(session) == []
