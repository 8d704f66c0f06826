"""Evidence: imports of public logs, call inputs, feedback and the one loader, on real databases."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from modelyard_registry import catalog
from modelyard_registry.cli.app import app
from modelyard_registry.db import session_scope
from modelyard_registry.errors import InvalidInput, NotFound
from modelyard_registry.evidence import (
    CallInput,
    FeedbackIn,
    ImportedOutcome,
    count_outcomes_since,
    evidence_text,
    list_feedback,
    load_outcomes,
    record_call_input,
    record_feedback,
)
from modelyard_registry.routing.outcomes import OutcomeSource
from modelyard_registry.scores import Call
from sqlmodel import Session, select
from typer.testing import CliRunner

runner = CliRunner()
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def yard(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def routerbench(tmp_path: Path, rows: Sequence[Mapping[str, object]],
                prompts: Sequence[Mapping[str, object]]) -> tuple[Path, Path]:
    """A tiny file pair in the RouterBench format of ``../shared/data/routerbench``."""
    outcomes, prompt_file = tmp_path / "train.jsonl", tmp_path / "prompts.jsonl"
    outcomes.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompt_file.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    return outcomes, prompt_file


PROMPTS = [
    {"query_id": "arc.1", "category": "arc-challenge", "prompt": "Which gas do plants absorb?"},
    {"query_id": "mbpp.1", "category": "mbpp", "prompt": "Write a function that adds two ints."},
]
ROWS = [
    {"query_id": q, "category": c, "model": m, "score": s, "cost_usd": cost}
    for q, c in (("arc.1", "arc-challenge"), ("mbpp.1", "mbpp"))
    for m, s, cost in (("gpt-4-1106-preview", 1.0, 0.004), ("mistralai/mistral-7b-chat", 0.0,
                                                              0.0001), ("smol", 1.0, 0.00001))
]


def _add_smol(session: Session) -> None:
    catalog.add_model(session, catalog.ModelCreate(
        name="smol", backend=catalog.Backend.openai_compatible, base_url="http://127.0.0.1:9",
        served_name="smol", price_in=0.1, price_out=0.2,
    ))


def test_import_keeps_external_models_for_replay_only_and_reimport_replaces(
    session: Session, tmp_path: Path
) -> None:
    _add_smol(session)
    outcomes, prompts = routerbench(tmp_path, ROWS, PROMPTS)
    code, out, err = yard("route", "import", str(outcomes), "--prompts", str(prompts), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["items"] == 2 and summary["outcomes"] == 6
    assert summary["external_models"] == ["gpt-4-1106-preview", "mistralai/mistral-7b-chat"]
    live = load_outcomes(session)
    assert {o.model for o in live} == {"smol"}  # the router only learns catalogue models
    everything = load_outcomes(session, include_external=True)
    assert len(everything) == 6 and {o.source for o in everything} == {OutcomeSource.imported}
    arc = [o for o in everything if o.item_id == "arc.1"]
    assert {o.kind for o in arc} == {"arc-challenge"}
    assert all(o.text == "Which gas do plants absorb?" for o in arc)
    assert len(load_outcomes(session, kind="mbpp", include_external=True)) == 3
    # the same ids again, with one grade changed: replaced, not duplicated
    changed = [dict(r, score=0.0) if r["model"] == "smol" else r for r in ROWS]
    outcomes, prompts = routerbench(tmp_path, changed, PROMPTS)
    code, _, err = yard("route", "import", str(outcomes), "--prompts", str(prompts))
    assert code == 0 and "external" in _ + err
    session.expire_all()
    assert len(session.exec(select(ImportedOutcome)).all()) == 6
    assert [o.score for o in load_outcomes(session)] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("line", "message"),
    [("{\"query_id\": \"arc.1\", \"category\": \"arc-challenge\", \"model\": \"m\", "
      "\"score\": 1.5}", ":3: field 'score' must be in [0, 1]"),
     ("{\"query_id\": \"arc.1\", \"category\": \"arc-challenge\", \"score\": 1}",
      ":3: field 'model'"),
     ("{\"query_id\": \"nope\", \"category\": \"x\", \"model\": \"m\", \"score\": 1}",
      ":3: query_id 'nope' has no prompt"),
     ("not json", ":3: not JSON")],
)
def test_import_bad_line_exits_2_naming_line_and_field_and_writes_nothing(
    session: Session, tmp_path: Path, line: str, message: str
) -> None:
    outcomes, prompts = routerbench(tmp_path, ROWS[:2], PROMPTS)
    outcomes.write_text(outcomes.read_text() + line + "\n")
    code, _, err = yard("route", "import", str(outcomes), "--prompts", str(prompts))
    assert code == 2, err
    assert message in err
    assert session.exec(select(ImportedOutcome)).all() == []


def test_evidence_text_keeps_the_user_turns_bounded() -> None:
    messages = [{"role": "system", "content": "You are a bot."},
                {"role": "user", "content": "a" * 5_000 + "the question?"}]
    kept = evidence_text(messages, None)
    assert len(kept) == 4000 and kept.startswith("a" * 1000)
    assert kept.endswith("a" * 100 + "the question?")  # the tail, where the question sits
    assert evidence_text(None, "plain prompt") == "plain prompt"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A migrated SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        with session_scope(f"sqlite:///{tmp_path / 'e.db'}") as session:
            yield session
        return
    name = f"modelyard_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with session_scope(f"postgresql://postgres@127.0.0.1:5432/{name}") as session:
            yield session
            session.get_bind().dispose()  # type: ignore[union-attr]
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _calls(session: Session) -> None:
    """What the cascade records: a chat call of team 1 (escalated, then accepted by its
    validator), a job node of team 2, a chat call nothing checked, each with its request text."""
    session.add_all([
        Call(request_id="chatcmpl-a", team_id=1, node="chat", kind="chat", attempt=1,
             model_name="small", outcome="escalated", cost_usd=0.001, validated=True),
        Call(request_id="chatcmpl-a", team_id=1, node="chat", kind="chat", attempt=2,
             model_name="big", outcome="accepted", cost_usd=0.01, validated=True),
        Call(request_id="job9:classify:1", job_id="job9", team_id=2, node="classify",
             kind="classify", attempt=1, model_name="small", outcome="accepted", validated=True),
        Call(request_id="chatcmpl-err", team_id=1, node="chat", kind="chat", attempt=1,
             model_name="small", outcome="error"),
        Call(request_id="chatcmpl-free", team_id=1, node="chat", kind="chat", attempt=1,
             model_name="small", outcome="accepted"),  # no validator: accepted, not graded
    ])
    record_call_input(session, request_id="chatcmpl-a", kind="chat", text="Hello there",
                      team_id=1, node="chat")
    record_call_input(session, request_id="chatcmpl-a", kind="chat", text="ignored", team_id=1)
    record_call_input(session, request_id="job9:classify:1", kind="classify",
                      text="Refund please", team_id=2, job_id="job9", node="classify")
    record_call_input(session, request_id="chatcmpl-err", kind="chat", text="x", team_id=1)
    record_call_input(session, request_id="chatcmpl-free", kind="chat", text="y", team_id=1)
    session.commit()


def test_validator_verdicts_and_feedback_become_outcomes(db: Session) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)
    _calls(db)
    assert db.get(CallInput, "chatcmpl-a").text == "Hello there"  # type: ignore[union-attr]
    outcomes = {(o.item_id, o.model): o for o in load_outcomes(db)}
    assert set(outcomes) == {("chatcmpl-a", "small"), ("chatcmpl-a", "big"),
                             ("job9:classify:1", "small")}  # errors, unchecked: nothing
    assert outcomes[("chatcmpl-a", "small")].score == 0.0
    assert outcomes[("chatcmpl-a", "big")].score == 1.0
    assert outcomes[("chatcmpl-a", "big")].source is OutcomeSource.validator
    assert count_outcomes_since(db, start) == 3

    first = record_feedback(db, team_id=1, feedback_in=FeedbackIn(request_id="chatcmpl-a",
                                                                   score=0.0, comment="wrong"))
    assert first.created and first.feedback.models == ["big"]
    again = record_feedback(db, team_id=1, feedback_in=FeedbackIn(request_id="chatcmpl-a",
                                                                   score=0.25))
    assert not again.created and again.feedback.id == first.feedback.id
    assert again.feedback.score == 0.25 and again.feedback.comment is None
    job = record_feedback(db, team_id=2, feedback_in=FeedbackIn(job_id="job9", node="classify",
                                                                 score=1.0))
    assert job.created and job.feedback.models == ["small"]

    graded = {(o.item_id, o.model): o for o in load_outcomes(db)}
    assert graded[("chatcmpl-a", "big")].source is OutcomeSource.feedback
    assert graded[("chatcmpl-a", "big")].score == 0.25
    assert graded[("chatcmpl-a", "small")].source is OutcomeSource.validator
    assert graded[("job9:classify:1", "small")].source is OutcomeSource.feedback
    assert [o.kind for o in load_outcomes(db, kind="classify")] == ["classify"]
    assert count_outcomes_since(db, start) == 5
    assert len(load_outcomes(db, since=datetime.now(UTC) + timedelta(hours=1))) == 0

    assert [f.id for f in list_feedback(db, team_id=2)] == [job.feedback.id]
    assert len(list_feedback(db)) == 2


@pytest.mark.parametrize(
    ("team", "body", "error", "field"),
    [(2, {"request_id": "chatcmpl-a", "score": 1}, NotFound, "request_id"),  # another team's
     (1, {"request_id": "chatcmpl-zzz", "score": 1}, NotFound, "request_id"),
     (1, {"job_id": "job9", "score": 1}, NotFound, "job_id"),
     (2, {"job_id": "job9", "node": "draft", "score": 1}, NotFound, "node"),
     (1, {"score": 1}, InvalidInput, "request_id"),
     (1, {"request_id": "chatcmpl-a", "job_id": "job9", "score": 1}, InvalidInput, "job_id")],
)
def test_feedback_is_team_scoped_and_names_what_is_wrong(
    db: Session, team: int, body: dict[str, object], error: type[Exception], field: str
) -> None:
    _calls(db)
    with pytest.raises(error) as raised:
        record_feedback(db, team_id=team, feedback_in=FeedbackIn.model_validate(body))
    assert getattr(raised.value, "field", None) == field
    assert list_feedback(db) == []


def test_other_teams_id_reads_exactly_like_an_unknown_one(db: Session) -> None:
    _calls(db)
    with pytest.raises(NotFound) as theirs:
        record_feedback(db, team_id=2, feedback_in=FeedbackIn(request_id="chatcmpl-a", score=1))
    db.add(Call(request_id="chatcmpl-b", team_id=9, kind="chat", model_name="m",
                outcome="accepted"))
    db.commit()
    with pytest.raises(NotFound) as unknown:
        record_feedback(db, team_id=2, feedback_in=FeedbackIn(request_id="chatcmpl-b", score=1))
    assert theirs.value.message.replace("chatcmpl-a", "ID") == \
        unknown.value.message.replace("chatcmpl-b", "ID")
