"""The cascade on real models: cheapest first, validated, escalated, every attempt in `calls`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelyard_registry import catalog
from modelyard_registry.db import session_scope
from modelyard_registry.errors import CascadeExhausted, NoAdequateModel
from modelyard_registry.pricing import estimate_tokens, local_cost
from modelyard_registry.remote_models import register_remote
from modelyard_registry.routing.candidates import Candidate
from modelyard_registry.routing.cascade import Cascade, adapt_request, render_plain
from modelyard_registry.routing.snapshot import load_candidates
from modelyard_registry.routing.tokens import count_prompt_tokens
from modelyard_registry.runtimes import (
    Completion,
    GenerationRequest,
    LlamaCppRuntime,
    RuntimeFactory,
)
from modelyard_registry.scores import Call, Score
from modelyard_registry.settings import Settings
from modelyard_registry.taskspec import TaskSpec
from modelyard_registry.validators import (
    Doubtful,
    all_of,
    field_probabilities,
    json_schema_validator,
    label_validator,
    logprob_confidence_validator,
    value_confidence_validator,
    value_probability,
)
from sqlmodel import Session, col, select

from ..conftest import free_port

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Name one fruit that is yellow."},
]


def done(text: str, logprobs: list[float] | None = None) -> Completion:
    return Completion(text=text, finish_reason="stop", prompt_tokens=1, completion_tokens=1,
                      latency_s=0.1, ttft_s=0.05, model="m", token_logprobs=logprobs)


# --- validators (pure) -------------------------------------------------------------------------


def test_json_schema_validator() -> None:
    check = json_schema_validator({"type": "object", "properties": {"n": {"type": "integer"}},
                                   "required": ["n"]})
    assert check(done('{"n": 3}'))[0] is True
    ok, why = check(done('{"n": "three"}'))
    assert not ok and "schema violation at n" in why
    ok, why = check(done("n = 3"))
    assert not ok and why.startswith("not JSON")


def test_label_validator_reads_raw_and_json_labels() -> None:
    check = label_validator(["billing", "bug"])
    assert check(done(" billing\n"))[0]
    assert check(done('{"label": "bug"}'))[0]
    assert check(done('"bug"'))[0]
    ok, why = check(done("refund"))
    assert not ok and "not one of" in why


def test_logprob_confidence_validator() -> None:
    check = logprob_confidence_validator(0.5)
    assert check(done("x")) == (True, "no logprobs from backend")
    assert check(done("x", [math.log(0.9), math.log(0.8)]))[0]
    ok, why = check(done("x", [math.log(0.2), math.log(0.3)]))
    assert not ok and "0.25 < 0.50" in why


def test_all_of_reports_the_first_rejection() -> None:
    check = all_of(label_validator(["a"]), lambda c: (False, "product says no"))
    assert check(done("b")) == (False, "label 'b' is not one of ['a']")
    assert check(done("a")) == (False, "product says no")
    assert all_of()(done("z")) == (True, "no checks")


def test_chat_messages_become_a_plain_prompt_for_completion_only_local_models() -> None:
    base = Candidate("g", "llama_cpp", frozenset({"completion"}), 2048, 0, 0, None, "unknown",
                     True, 1)
    chat = Candidate("s", "llama_cpp", frozenset({"chat", "completion"}), 2048, 0, 0, None,
                     "unknown", True, 1)
    request = GenerationRequest(messages=MESSAGES, max_tokens=8)
    plain = adapt_request(request, base)
    assert plain.messages is None and plain.prompt == render_plain(MESSAGES)
    assert plain.prompt.endswith("Assistant:") and "User: Name one fruit" in plain.prompt
    assert plain.stop == ["\nUser:"]
    assert adapt_request(request, chat) is request


# --- real models -------------------------------------------------------------------------------


def _pieces(texts: list[str], probs: list[float]) -> Completion:
    completion = done("".join(texts), [math.log(p) for p in probs])
    completion.token_texts = texts
    return completion


LABELS = ['{"', "category", '":', ' "', "ship", "ping", '",', ' "', "urgency", '":', ' "', "high",
          '"}']
PROBS = [0.6, 1.0, 1.0, 1.0, 0.43, 0.99, 1.0, 1.0, 1.0, 1.0, 1.0, 0.3, 1.0]


def test_value_probability_is_the_first_token_of_the_value() -> None:
    completion = _pieces(LABELS, PROBS)
    assert value_probability(completion, "category") == pytest.approx(0.43)
    assert value_probability(completion, "urgency") == pytest.approx(0.3)
    assert value_probability(completion, "language") is None
    assert value_probability(done(completion.text, [math.log(p) for p in PROBS]),
                             "category") is None  # no token texts: no signal
    cut = _pieces(LABELS, PROBS)
    cut.text = cut.text.replace("ship", "shop")  # tokens that do not spell the text
    assert value_probability(cut, "category") is None


def test_field_probabilities_are_each_values_least_sure_token() -> None:
    texts = ['{"', "name", '":', ' "', "Tom", "as", " Ok", "afor", '",', ' "', "team", '":',
             ' "', "Data", " Platform", " team", '",', ' "', "seats", '":', " ", "1", "2", "}"]
    probs = [1.0] * len(texts)
    probs[5], probs[15], probs[22] = 0.8, 0.35, 0.5
    got = field_probabilities(_pieces(texts, probs))
    assert got == pytest.approx({"name": 0.8, "team": 0.35, "seats": 0.5})
    assert field_probabilities(done('{"a": 1}')) == {"a": None}  # no logprobs: no signal
    assert field_probabilities(done("not json")) == {}


def test_value_confidence_doubts_an_unsure_value_and_passes_without_a_signal() -> None:
    check = value_confidence_validator("category", 0.6)
    with pytest.raises(Doubtful, match=r"category probability 0\.43 < 0\.60"):
        check(_pieces(LABELS, PROBS))
    sure = PROBS.copy()
    sure[4] = 0.9
    assert check(_pieces(LABELS, sure)) == (True, "category probability 0.90 >= 0.60")
    assert check(done('{"category": "shipping"}'))[0]  # a backend without logprobs
    # in all_of a hard rejection comes first; a doubt ends the checks
    strict = all_of(json_schema_validator({"type": "object", "required": ["language"]}), check)
    assert not strict(_pieces(LABELS, PROBS))[0]


def _local(session: Session, name: str, path: Path, capabilities: list[str]) -> None:
    """Catalogue rows as `register_gguf` writes them, minus the seconds spent re-reading headers
    (tests/registry/test_cli_models.py covers that path)."""
    catalog.add_model(session, catalog.ModelCreate(
        name=name, backend=catalog.Backend.llama_cpp, gguf_path=str(path), context_length=8192,
        capabilities=capabilities, ram_bytes=path.stat().st_size + 64 * 2**20,
    ))


def _score(session: Session, model: str, tokens_per_s: float) -> None:
    session.add(Score(model_name=model, kind="qa", metric="fuzzy_match", value=0.5, n=10,
                      ci_low=0.2, ci_high=0.8, suite_version="qa-test", tokens_per_s=tokens_per_s,
                      latency_s=1.0, prompt_tokens_mean=100, completion_tokens_mean=10))
    session.commit()


@pytest.fixture
def two_models(session: Session, settings: Settings, smollm2_path: Path,
               gemma_path: Path) -> Session:
    """SmolLM2 (chat, measured fast, so cheaper) and Gemma (completion only, measured slower)."""
    _local(session, "smollm2", smollm2_path, ["chat", "completion", "json_schema"])
    _local(session, "gemma", gemma_path, ["completion", "json_schema"])
    _score(session, "smollm2", 100.0)
    _score(session, "gemma", 40.0)
    return session


@pytest.fixture
def runtimes(settings: Settings) -> Iterator[RuntimeFactory]:
    factory = RuntimeFactory(settings)
    yield factory
    factory.close()


def _cascade(settings: Settings, runtimes: RuntimeFactory) -> Cascade:
    return Cascade(lambda: session_scope(settings.effective_database_url), settings, runtimes)


def _calls(session: Session, request_id: str) -> list[Call]:
    session.expire_all()
    return list(session.exec(select(Call).where(Call.request_id == request_id)
                             .order_by(col(Call.attempt))).all())


@pytest.mark.slow
def test_rejected_cheap_answer_escalates_and_every_attempt_is_paid_for(
    two_models: Session, settings: Settings, runtimes: RuntimeFactory
) -> None:
    spec = TaskSpec.build(kind="qa", min_quality=0.2, max_output_tokens=24)  # 0.5 over 10 items
    request = GenerationRequest(messages=MESSAGES, max_tokens=24, stop=["\n"])  # counts as 0.24

    # The product check: accept only an answer other than SmolLM2's. Greedy decoding is
    # deterministic, so SmolLM2's answer is learnt first and is what the check refuses.
    smol_entry = catalog.get_model(two_models, "smollm2")
    smol_text = runtimes.for_entry(smol_entry).generate(request).text

    def product_check(completion: Completion) -> tuple[bool, str]:
        if completion.text.strip() == smol_text.strip():
            return False, "answer refused by the product check"
        return True, "answer passes the product check"

    cascade = _cascade(settings, runtimes)
    result = cascade.run(spec, request, product_check, request_id="req-1", job_id="job-9",
                         team_id=7, node="answer")

    assert [a.model for a in result.attempts] == ["smollm2", "gemma"]
    assert [a.outcome for a in result.attempts] == ["escalated", "accepted"]
    assert result.model == "gemma" and result.escalated
    assert result.completion.text.strip() != smol_text.strip()
    assert result.decision.chosen is not None and result.decision.chosen.name == "smollm2"

    rows = _calls(two_models, "req-1")
    assert [(r.attempt, r.model_name, r.outcome) for r in rows] == [
        (1, "smollm2", "escalated"), (2, "gemma", "accepted")]
    assert "refused by the product check" in rows[0].reason
    assert all(r.job_id == "job-9" and r.team_id == 7 and r.node == "answer" and r.kind == "qa"
               for r in rows)
    for row, attempt in zip(rows, result.attempts, strict=True):
        assert row.prompt_tokens == attempt.prompt_tokens > 0
        assert row.completion_tokens == attempt.completion_tokens > 0
        assert row.cost_usd == pytest.approx(local_cost(row.latency_s,
                                                        settings.machine_cost_per_hour))
        assert row.cost_usd > 0
    assert sum(r.cost_usd for r in rows) == pytest.approx(result.cost_usd)

    # both models are loaded now: routing counts prompt tokens with each one's own tokenizer
    text = "Tokenizers disagree about antidisestablishmentarianism, naturally."
    counts = count_prompt_tokens(two_models, load_candidates(two_models, settings), text,
                                 runtimes)
    smol_runtime = runtimes.for_entry(smol_entry)
    assert isinstance(smol_runtime, LlamaCppRuntime)
    assert counts["smollm2"] == smol_runtime.count_tokens(text)
    assert counts["smollm2"] != estimate_tokens(text)


@pytest.mark.slow
def test_doubt_asks_the_next_model_and_the_last_one_answers(
    two_models: Session, settings: Settings, runtimes: RuntimeFactory
) -> None:
    spec = TaskSpec.build(kind="qa", min_quality=0.2, max_output_tokens=8)
    request = GenerationRequest(prompt="The capital of France is", max_tokens=8)

    def unsure(completion: Completion) -> tuple[bool, str]:
        raise Doubtful("always unsure")

    result = _cascade(settings, runtimes).run(spec, request, unsure, request_id="req-d")
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("smollm2", "escalated"), ("gemma", "accepted")]  # not CascadeExhausted
    rows = _calls(two_models, "req-d")
    assert "rejected: doubtful: always unsure; escalating" in rows[0].reason
    assert "doubtful: always unsure; no stronger candidate" in rows[1].reason
    # a doubt is not routing evidence that the model failed (nor that it succeeded)
    assert [r.validated for r in rows] == [False, False]
    assert result.model == "gemma" and result.cost_usd == pytest.approx(
        sum(r.cost_usd for r in rows))


@pytest.mark.slow
def test_backend_error_is_recorded_and_escalates(
    two_models: Session, settings: Settings, runtimes: RuntimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    register_remote(two_models, settings, name="dead-remote", base_url=dead, served_name="x",
                    check=False)
    _score(two_models, "dead-remote", 1000.0)  # free and fast on paper: tried first
    settings.max_retries = 0
    spec = TaskSpec.build(kind="qa", max_output_tokens=8)
    request = GenerationRequest(messages=MESSAGES, max_tokens=8)
    result = _cascade(settings, runtimes).run(spec, request, request_id="req-2")
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("dead-remote", "error"), ("smollm2", "accepted")]
    rows = _calls(two_models, "req-2")
    assert [r.outcome for r in rows] == ["error", "accepted"]
    assert "BackendUnreachable" in rows[0].reason and rows[0].cost_usd == 0.0
    assert result.cost_usd == pytest.approx(rows[1].cost_usd)


@pytest.mark.slow
def test_exhausted_cascade_raises_after_recording_every_attempt(
    two_models: Session, settings: Settings, runtimes: RuntimeFactory
) -> None:
    spec = TaskSpec.build(kind="qa", max_output_tokens=4)
    request = GenerationRequest(prompt="The capital of France is", max_tokens=4)
    with pytest.raises(CascadeExhausted) as info:
        _cascade(settings, runtimes).run(spec, request, lambda c: (False, "never good enough"),
                                         request_id="req-3")
    assert len(info.value.attempts) == 2
    rows = _calls(two_models, "req-3")
    assert [r.model_name for r in rows] == ["smollm2", "gemma"]
    assert all(r.outcome == "escalated" for r in rows)
    assert "no candidate left" in rows[1].reason


def test_no_adequate_model_writes_nothing(
    session: Session, settings: Settings, smollm2_path: Path
) -> None:
    _local(session, "smollm2", smollm2_path, ["chat", "completion", "json_schema"])
    _score(session, "smollm2", 100.0)
    factory = RuntimeFactory(settings)
    try:
        with pytest.raises(NoAdequateModel, match="closest is 'smollm2'"):
            _cascade(settings, factory).run(
                TaskSpec.build(kind="qa", min_quality=0.9),
                GenerationRequest(prompt="hi", max_tokens=4), request_id="req-4")
    finally:
        factory.close()
    assert _calls(session, "req-4") == []
    assert factory.pool.loaded == []  # no model was even loaded
