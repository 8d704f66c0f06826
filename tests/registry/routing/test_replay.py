"""Offline replay: on evidence where only per-request routing can win, the learned router beats
the per-kind rule; the CLI prints the documented JSON and rejects a bad file with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelyard_registry.cli.app import app
from modelyard_registry.errors import InvalidInput
from modelyard_registry.routing.embed import HashedNgramEmbedder
from modelyard_registry.routing.policy import BudgetMix
from modelyard_registry.routing.public_format import read_outcomes
from modelyard_registry.routing.replay import replay, split
from typer.testing import CliRunner

from .synthetic import outcomes, write_routerbench

runner = CliRunner()


def test_learned_router_beats_the_per_kind_rule_at_no_more_cost() -> None:
    train, test = split(outcomes(240), 0.7, seed=1)
    report = replay(train, test, HashedNgramEmbedder(), boots=200)
    assert report.baseline == "oracle-xl"
    by = {p.name: p for p in report.policies}
    per_kind = [p for p in report.policies if p.rule == "per-kind"]
    learned = [p for p in report.policies if p.rule in ("threshold", "utility")]
    # the per-kind rule reaches the frontier's quality only by paying for the frontier
    good_per_kind = [p for p in per_kind if p.quality_ratio >= 0.9]
    assert good_per_kind and min(p.cost_ratio for p in good_per_kind) > 0.9
    # some learned setting keeps that quality at a fraction of the cost
    assert any(p.quality_ratio >= 0.9 and p.cost_ratio <= 0.2 for p in learned)
    for p in per_kind:  # and at every per-kind point a learned one is as good for no more
        assert any(q.cost_ratio <= p.cost_ratio + 1e-9 and q.quality_ratio >= p.quality_ratio
                   for q in learned)
    oracle = by["oracle (cheapest adequate answer)"]
    assert oracle.upper_bound and oracle.quality_ratio >= max(p.quality_ratio for p in learned)
    assert all(lo <= p.quality_ratio <= hi for p in report.policies
               for lo, hi in [p.quality_ci])
    # the default shrinks hard toward the per-kind mean (public data is noisy); on clean evidence
    # the isotonic map learned out of fold brings the estimates back to the observed rates
    calibrated = replay(train, test, HashedNgramEmbedder(), boots=50, calibrate=True)
    assert 0.0 <= calibrated.calibration_error < report.calibration_error


def test_split_is_by_item_and_stable() -> None:
    rows = outcomes(100)
    a_train, a_test = split(rows, 0.8, seed=4)
    b_train, _ = split(rows, 0.8, seed=4)
    assert a_train == b_train
    assert not {o.item_id for o in a_train} & {o.item_id for o in a_test}
    with pytest.raises(InvalidInput):
        split(rows, 1.0)


def yard(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["route", "replay", *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_json_shape(tmp_path: Path) -> None:
    out, prompts = write_routerbench(outcomes(120), tmp_path)
    code, stdout, stderr = yard(str(out), "--prompts", str(prompts), "--train-frac", "0.7",
                                "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["baseline"] == "oracle-xl"
    names = [p["name"] for p in data["policies"]]
    assert any(n.startswith("always-best") for n in names)
    assert any(n.startswith("always-cheapest") for n in names)
    assert any(n.startswith("per-kind rule") for n in names)
    assert any(n.startswith("cascade") for n in names) and any("oracle" in n for n in names)
    for p in data["policies"]:
        assert {"name", "threshold", "cost_ratio", "quality_ratio", "quality_ci"} <= p.keys()
        assert len(p["quality_ci"]) == 2


def test_cli_trains_on_one_file_and_reports_on_another(tmp_path: Path) -> None:
    rows = outcomes(160)
    train, test = split(rows, 0.6, seed=2)
    tr_out, tr_prompts = write_routerbench(train, tmp_path / "train")
    te_out, te_prompts = write_routerbench(test, tmp_path / "test")
    code, stdout, stderr = yard(str(te_out), "--prompts", str(te_prompts), "--train",
                                str(tr_out), "--train-prompts", str(tr_prompts), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["test_items"] == len({o.item_id for o in test})
    code, stdout, stderr = yard(str(te_out), "--prompts", str(te_prompts))
    assert code == 0, stderr
    assert "per-kind rule" in stdout and "oracle" in stdout


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "line 3: not JSON"),
    ('{"query_id": "q0", "category": "qa", "model": "calc", "score": 3}', "'score' must be in"),
    ('{"query_id": "q0", "category": "qa", "score": 1}', "field 'model'"),
    ('{"query_id": "q999", "category": "qa", "model": "calc", "score": 1}', "has no prompt"),
])
def test_cli_bad_file_exits_2_naming_line_and_field(tmp_path: Path, line: str,
                                                    message: str) -> None:
    out, prompts = write_routerbench(outcomes(20), tmp_path)
    rows = out.read_text().splitlines()
    rows[2] = line
    out.write_text("\n".join(rows) + "\n")
    code, _, stderr = yard(str(out), "--prompts", str(prompts), "--json")
    assert code == 2
    assert f"{out}:3" in stderr.replace(":3:", ":3") and message.replace("line 3: ", "") in stderr
    with pytest.raises(InvalidInput):
        read_outcomes(out, prompts)


def test_cli_without_files_or_with_a_missing_file_exits_2(tmp_path: Path) -> None:
    code, _, stderr = yard("--json")
    assert code == 2 and "--prompts" in stderr
    code, _, stderr = yard(str(tmp_path / "nope.jsonl"), "--prompts", str(tmp_path / "p.jsonl"))
    assert code == 2 and "cannot read" in stderr


def test_cli_replays_the_platforms_own_evidence(yard_home: Path, tmp_path: Path) -> None:
    code, _, stderr = yard("--from-db")
    assert code == 2 and "no stored evidence" in stderr
    out, prompts = write_routerbench(outcomes(120), tmp_path)
    result = runner.invoke(app, ["route", "import", str(out), "--prompts", str(prompts)])
    assert result.exit_code == 0, result.stderr
    code, stdout, stderr = yard("--from-db", "--since", "2000-01-01", "--train-frac", "0.7",
                                "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["baseline"] == "oracle-xl" and data["train_items"] + data["test_items"] == 120
    code, _, stderr = yard("--from-db", "--since", "yesterday")
    assert code == 2 and "--since" in stderr


def test_a_budget_mix_lands_between_its_two_lambdas() -> None:
    train, test = split(outcomes(240), 0.7, seed=1)
    mix = BudgetMix(lam_cheap=4.0, lam_rich=0.0, share=0.5)
    report = replay(train, test, HashedNgramEmbedder(), boots=50, min_qualities=(),
                    mixes=(mix, BudgetMix(4.0, 0.0, 0.0), BudgetMix(4.0, 0.0, 1.0)))
    mixed, cheap, rich = (p for p in report.policies if p.rule == "utility-mix")
    assert cheap.cost_ratio < mixed.cost_ratio < rich.cost_ratio
    assert mixed.cost_ratio == pytest.approx((cheap.cost_ratio + rich.cost_ratio) / 2, abs=0.1)
