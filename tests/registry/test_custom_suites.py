"""Custom eval suites: each metric, the CLI's add/list/eval, and bad input that writes nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from modelyard_registry import catalog
from modelyard_registry.cli.app import app
from modelyard_registry.evals.custom import CustomItem, Grader, Metric, SuiteConfig, parse_grade
from modelyard_registry.evals.store import EvalSuiteRow
from modelyard_registry.evidence import EvalOutcome, load_outcomes
from modelyard_registry.routing.outcomes import OutcomeSource
from modelyard_registry.scores import Score
from sqlmodel import Session, select
from typer.testing import CliRunner

runner = CliRunner()


def yard(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def write_items(path: Path, items: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def grade(metric: Metric, expected: object, output: str, **config: object) -> float:
    grader = Grader(metric, SuiteConfig.model_validate(config))
    return grader.score(output, CustomItem(id="1", input="q", expected=expected))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("metric", "expected", "config", "good", "bad"),
    [
        (Metric.exact, "Paris", {}, "paris.", "Lyon"),
        (Metric.label, "refund", {"labels": ["refund", "other"]}, '{"label": "Refund"}', "other"),
        (Metric.contains, ["24 months", "warranty"], {}, "The warranty lasts 24 months.",
         "It lasts 24 months."),
        (Metric.regex, r"\bINV-\d{4}\b", {}, "Your invoice is INV-1234.", "INV-12"),
        (Metric.numeric, 12.5, {"tolerance": 0.1}, "About 12.55 euros", "13 euros"),
        (Metric.rouge_l, "the cat sat on the mat", {}, "the cat sat on the mat", "dogs bark"),
    ],
)
def test_each_metric_tells_a_right_answer_from_a_wrong_one(
    metric: Metric, expected: object, config: dict[str, object], good: str, bad: str
) -> None:
    assert grade(metric, expected, good, **config) == 1.0
    assert grade(metric, expected, bad, **config) < 0.5


def test_json_fields_scores_the_share_of_fields_right() -> None:
    expected = {"city": "Oslo", "guests": 3}
    assert grade(Metric.json_fields, expected, '{"city": "oslo", "guests": 3}') == 1.0
    assert grade(Metric.json_fields, expected, '{"city": "Oslo", "guests": 4}') == 0.5
    assert grade(Metric.json_fields, expected, "not json") == 0.0


def test_judge_grade_parses_json_or_the_first_number() -> None:
    assert parse_grade('{"grade": 7}') == 0.7
    assert parse_grade("I would give it 10/10") == 1.0
    assert parse_grade("no idea") == 0.0
    grader = Grader(Metric.judge, SuiteConfig(judge_model="j", rubric="polite"))
    item = CustomItem(id="1", input="say hi")
    asked: list[str] = []

    def judge(request: object) -> str:
        asked.append(str(getattr(request, "messages", "")))
        return '{"grade": 8}'

    assert grader.score("hello!", item, judge) == 0.8
    assert "polite" in asked[0] and "hello!" in asked[0]


def _suite_rows(session: Session) -> list[EvalSuiteRow]:
    session.expire_all()
    return list(session.exec(select(EvalSuiteRow)).all())


CASES = [
    ("exact", [{"id": "a", "input": "Capital of France?", "expected": "Paris"}], []),
    ("label", [{"id": "a", "input": "I want my money back", "expected": "refund"}],
     ["--labels", "refund,other"]),
    ("json-fields", [{"id": "a", "input": "Table for 3 in Oslo", "expected": {"city": "Oslo"}}],
     []),
    ("contains", [{"id": "a", "input": "Warranty?", "expected": ["24 months"]}], []),
    ("regex", [{"id": "a", "input": "Invoice id?", "expected": "INV-\\d+"}], []),
    ("rouge-l", [{"id": "a", "input": "Summarise: cats", "expected": "cats are pets"}], []),
    ("numeric", [{"id": "a", "input": "2+2?", "expected": 4}], ["--tolerance", "0"]),
]


@pytest.mark.parametrize(("metric", "items", "extra"), CASES)
def test_yard_evals_add_then_list_each_metric(
    session: Session, tmp_path: Path, metric: str, items: list[object], extra: list[str]
) -> None:
    path = write_items(tmp_path / "items.jsonl", items)
    code, out, err = yard("evals", "add", "mine", "--kind", "support-desk", "--file", str(path),
                          "--metric", metric, *extra, "--json")
    assert code == 0, err
    added = json.loads(out)
    assert added["metric"] == metric and added["kind"] == "support-desk"
    assert added["version"].startswith("mine-") and added["n_items"] == 1
    code, out, _ = yard("evals", "list", "--json")
    listed = {s["name"]: s for s in json.loads(out)}
    assert listed["mine"]["builtin"] is False and listed["classify"]["builtin"] is True
    # the same file again changes nothing; an edited one is a new version
    code, out, _ = yard("evals", "add", "mine", "--kind", "support-desk", "--file", str(path),
                        "--metric", metric, *extra, "--json")
    assert json.loads(out)["version"] == added["version"]
    assert len(_suite_rows(session)) == 1


BAD = [
    ('{"id": "a", "input": "x", "expected": "Paris"}\n{"id": "b", "expected": "Rome"}\n',
     ["--metric", "exact"], "line 2: field 'input'"),
    ('{"id": "a", "input": "x", "expected": "Paris"}\nnot json\n', ["--metric", "exact"],
     "line 2: not JSON"),
    ('{"id": "a", "input": "x", "expected": "maybe"}\n', ["--metric", "label", "--labels",
                                                           "yes,no"], "line 1: field 'expected'"),
    ('\n{"id": "a", "input": "x", "expected": "("}\n', ["--metric", "regex"],
     "line 2: field 'expected': not a valid regular expression"),
    ('{"id": "a", "input": "x", "expected": "4"}\n', ["--metric", "numeric"],
     "line 1: field 'expected': must be a number"),
    ('{"id": "a", "input": "x", "expected": []}\n', ["--metric", "json-fields"],
     "line 1: field 'expected'"),
    ('{"id": "a", "input": "x", "expected": "y"}\n{"id": "a", "input": "z", "expected": "y"}\n',
     ["--metric", "exact"], "line 2: field 'id': duplicate id 'a'"),
    ('{"id": "a", "input": "x", "expected": "y", "colour": 1}\n', ["--metric", "exact"],
     "line 1: field 'colour'"),
    ('{"id": "a", "input": "x"}\n', ["--metric", "judge", "--rubric", "polite"],
     "judge metric needs a judge model"),
    ('{"id": "a", "input": "x"}\n', ["--metric", "judge", "--rubric", "ok", "--judge-model",
                                     "ghost"], "judge model 'ghost' is not in the catalogue"),
    ('{"id": "a", "input": "x", "expected": "y"}\n', ["--metric", "bleu"], "unknown metric"),
    ('{"id": "a", "input": "x", "expected": "y"}\n', ["--metric", "label", "--labels", "one"],
     "at least two distinct labels"),
]


@pytest.mark.parametrize(("content", "args", "message"), BAD)
def test_bad_suite_input_exits_2_naming_line_and_field_and_writes_nothing(
    session: Session, tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(content)
    code, _, err = yard("evals", "add", "mine", "--kind", "support", "--file", str(path), *args)
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1
    assert _suite_rows(session) == []


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [("mine", "Support Desk", "invalid task kind 'Support Desk'"),
     ("mine", "x", "invalid task kind 'x'"),
     ("classify", "classify", "'classify' is a built-in suite"),
     ("Mine!", "support", "invalid suite name 'Mine!'")],
)
def test_suite_and_kind_names_are_validated(
    session: Session, tmp_path: Path, name: str, kind: str, message: str
) -> None:
    path = write_items(tmp_path / "i.jsonl", [{"id": "a", "input": "x", "expected": "y"}])
    code, _, err = yard("evals", "add", name, "--kind", kind, "--file", str(path),
                        "--metric", "exact")
    assert code == 2 and message in err, err
    assert _suite_rows(session) == []


@pytest.fixture
def smol(session: Session, smollm2_path: Path) -> str:
    catalog.add_model(session, catalog.ModelCreate(
        name="smol", backend=catalog.Backend.llama_cpp, gguf_path=str(smollm2_path),
        context_length=8192, capabilities=["chat", "completion", "json_schema"],
        ram_bytes=smollm2_path.stat().st_size + 64 * 2**20,
    ))
    return "smol"


@pytest.mark.slow
def test_custom_suite_runs_on_smollm2_and_stores_score_and_item_outcomes(
    smol: str, session: Session, tmp_path: Path
) -> None:
    items = [
        {"id": "r1", "input": "Customer: I want my money back for order 1.", "expected": "refund"},
        {"id": "r2", "input": "Customer: where is my parcel?", "expected": "shipping"},
        {"id": "r3", "input": "Customer: please refund the double charge.", "expected": "refund"},
    ]
    path = write_items(tmp_path / "triage.jsonl", items)
    code, _, err = yard("evals", "add", "triage", "--kind", "support", "--file", str(path),
                        "--metric", "label", "--labels", "refund,shipping,other")
    assert code == 0, err
    judged = write_items(tmp_path / "polite.jsonl",
                         [{"id": "p1", "input": "Say hello to a customer."}])
    code, _, err = yard("evals", "add", "polite", "--kind", "support", "--file", str(judged),
                        "--metric", "judge", "--judge-model", "smol", "--rubric",
                        "The reply greets the customer politely.", "--max-tokens", "24")
    assert code == 0, err
    code, out, err = yard("models", "eval", smol, "--suite", "triage", "--suite", "polite",
                          "--json")
    assert code == 0, err
    results = {r["suite"]: r for r in json.loads(out)}
    assert results["triage"]["metric"] == "label" and results["triage"]["n"] == 3
    assert results["triage"]["kind"] == "support" and results["polite"]["metric"] == "judge"
    session.expire_all()
    scores = {s.metric: s for s in session.exec(select(Score)).all()}
    assert scores["label"].kind == "support" and scores["label"].n == 3
    rows = session.exec(select(EvalOutcome).where(EvalOutcome.suite == "triage")).all()
    assert sorted(r.item_id for r in rows) == ["r1", "r2", "r3"]
    assert all(r.text.startswith("Customer:") and r.latency_s > 0 and r.cost_usd > 0
               and r.completion_tokens > 0 for r in rows)
    outcomes = load_outcomes(session, kind="support")
    sources = {o.item_id: o.source for o in outcomes}
    assert sources["triage:r1"] is OutcomeSource.eval
    assert sources["polite:p1"] is OutcomeSource.judge
    weights = {o.source: o.weight for o in outcomes}
    assert weights[OutcomeSource.judge] < weights[OutcomeSource.eval]
    # a re-run replaces the model's outcomes on the suite, never duplicates them
    code, _, err = yard("models", "eval", smol, "--suite", "triage")
    assert code == 0, err
    session.expire_all()
    assert len(session.exec(select(EvalOutcome).where(EvalOutcome.suite == "triage")).all()) == 3
