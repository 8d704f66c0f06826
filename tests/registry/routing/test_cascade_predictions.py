"""The cascade over real models, judged by a trained predictor: its order follows the request's
predictions (not the per-kind score), and a validator's rejection comes back as evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from modelyard_registry import catalog
from modelyard_registry.db import session_scope
from modelyard_registry.evidence.loader import load_outcomes
from modelyard_registry.evidence.tables import EvalOutcome
from modelyard_registry.routing.artefacts import RoutingArtefact, active_version
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.routing.outcomes import OutcomeSource
from modelyard_registry.routing.training import new_evidence, retrain_if_due, train
from modelyard_registry.runtimes import Completion, GenerationRequest, RuntimeFactory
from modelyard_registry.scores import Call, Score
from modelyard_registry.settings import Settings
from modelyard_registry.taskspec import TaskSpec
from sqlmodel import Session, col, select

FRUITS = ["yellow", "red", "green", "orange", "purple", "black", "white", "pink", "brown",
          "blue", "golden", "striped"]
COUNTRIES = ["France", "Spain", "Peru", "Kenya", "Japan", "Chile", "Egypt", "Norway", "Canada",
             "India", "Ghana", "Nepal"]


def _local(session: Session, name: str, path: Path, capabilities: list[str],
           tokens_per_s: float) -> None:
    catalog.add_model(session, catalog.ModelCreate(
        name=name, backend=catalog.Backend.llama_cpp, gguf_path=str(path), context_length=8192,
        capabilities=capabilities, ram_bytes=path.stat().st_size + 64 * 2**20,
    ))
    session.add(Score(model_name=name, kind="qa", metric="exact", value=0.5, n=24, ci_low=0.3,
                      ci_high=0.7, suite_version="qa-test", tokens_per_s=tokens_per_s,
                      latency_s=1.0, prompt_tokens_mean=100, completion_tokens_mean=10))


@pytest.fixture
def evidenced(session: Session, settings: Settings, smollm2_path: Path,
              gemma_path: Path) -> Session:
    """Per kind both models score 0.5; per request, Gemma knows fruit and SmolLM2 capitals."""
    _local(session, "smollm2", smollm2_path, ["chat", "completion"], 100.0)  # the cheaper
    _local(session, "gemma", gemma_path, ["completion"], 40.0)
    for n, colour in enumerate(FRUITS):
        text = f"Name one fruit that is {colour}."
        session.add(EvalOutcome(model_name="gemma", kind="qa", suite="qa", suite_version="t",
                                item_id=f"fruit-{n}", text=text, score=1.0))
        session.add(EvalOutcome(model_name="smollm2", kind="qa", suite="qa", suite_version="t",
                                item_id=f"fruit-{n}", text=text, score=0.0))
    for n, country in enumerate(COUNTRIES):
        text = f"What is the capital city of {country}?"
        session.add(EvalOutcome(model_name="gemma", kind="qa", suite="qa", suite_version="t",
                                item_id=f"capital-{n}", text=text, score=0.0))
        session.add(EvalOutcome(model_name="smollm2", kind="qa", suite="qa", suite_version="t",
                                item_id=f"capital-{n}", text=text, score=1.0))
    session.commit()
    return session


@pytest.fixture
def runtimes(settings: Settings) -> Iterator[RuntimeFactory]:
    factory = RuntimeFactory(settings)
    yield factory
    factory.close()


def ask(text: str) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], max_tokens=4)


def test_without_a_trained_predictor_the_per_kind_score_orders(
    evidenced: Session, settings: Settings, runtimes: RuntimeFactory
) -> None:
    cascade = Cascade(lambda: session_scope(settings.effective_database_url), settings, runtimes)
    decision, _, _ = cascade.plan(TaskSpec.build(kind="qa", min_quality=0.25),  # 0.5/24 -> 0.31
                                  ask("Name one fruit that is yellow."))
    assert decision.basis == "score"
    assert [v.name for v in decision.ranked()] == ["smollm2", "gemma"]  # cheaper first


@pytest.mark.slow
def test_trained_predictions_order_the_cascade_and_a_rejection_becomes_evidence(
    evidenced: Session, settings: Settings, runtimes: RuntimeFactory
) -> None:
    version = train(evidenced, settings)
    assert version.outcomes == 48 and version.kinds == ["qa"]
    assert evidenced.get(RoutingArtefact, version.version) is not None  # in the database
    assert active_version(evidenced) == version and new_evidence(evidenced) == 0
    assert retrain_if_due(evidenced, settings) is None  # nothing new arrived

    cascade = Cascade(lambda: session_scope(settings.effective_database_url), settings, runtimes)
    spec = TaskSpec.build(kind="qa", min_quality=0.6)
    fruit, _, _ = cascade.plan(spec, ask("Name one fruit that is lilac."))
    capital, _, _ = cascade.plan(spec, ask("What is the capital city of Laos?"))
    assert fruit.basis == capital.basis == "prediction"
    assert next(v.name for v in fruit.ranked()) == "gemma"  # dearer, but this one needs it
    assert next(v.name for v in capital.ranked()) == "smollm2"
    by = {v.name: v for v in fruit.candidates}
    assert by["gemma"].prediction is not None and by["smollm2"].prediction is not None
    assert by["gemma"].prediction.p > by["smollm2"].prediction.p
    assert by["gemma"].prediction.neighbours[0].item_id.startswith("qa:fruit-")

    def refuse_first(completion: Completion) -> tuple[bool, str]:
        return (completion.model != "gemma", "product check")

    result = cascade.run(spec, ask("Name one fruit that is lilac."), refuse_first,
                         request_id="req-fruit")
    assert (result.attempts[0].model, result.attempts[0].outcome) == ("gemma", "escalated")
    rows = list(evidenced.exec(select(Call).where(Call.request_id == "req-fruit")
                               .order_by(col(Call.attempt))).all())
    assert rows[0].model_name == "gemma" and rows[0].outcome == "escalated"
    assert fruit.chosen is not None and "predicted quality" in fruit.chosen.reason
    # the escalation is evidence now: gemma failed this request
    validator = [o for o in load_outcomes(evidenced, kind="qa")
                 if o.source == OutcomeSource.validator and o.item_id == "req-fruit"]
    assert ("gemma", 0.0) in {(o.model, o.score) for o in validator}
    assert all(o.model != "smollm2" or o.score == 1.0 for o in validator)  # accepted, checked

    unchecked = cascade.run(spec, ask("What is the capital city of Laos?"),
                            request_id="req-free")
    assert unchecked.attempts[0].validated is False
    assert not [o for o in load_outcomes(evidenced) if o.item_id == "req-free"]
    assert new_evidence(evidenced) >= 1
