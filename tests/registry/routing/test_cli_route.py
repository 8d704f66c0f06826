"""`yard route train` and `yard route explain` over a real catalogue and evidence store."""

from __future__ import annotations

import json

from modelyard_registry import catalog
from modelyard_registry.cli.app import app
from modelyard_registry.evidence.tables import EvalOutcome
from sqlmodel import Session
from typer.testing import CliRunner

runner = CliRunner()


def yard(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_train_needs_evidence_then_explain_shows_predictions(session: Session) -> None:
    code, _, err = yard("route", "train")
    assert code == 2 and "no routing evidence yet" in err

    for name, price in (("small", 0.1), ("large", 5.0)):
        catalog.add_model(session, catalog.ModelCreate(
            name=name, backend=catalog.Backend.openai_compatible,
            base_url="http://127.0.0.1:9/v1", served_name=name, price_in=price,
            price_out=price, capabilities=["chat"]))
    for i, topic in enumerate(["tax", "tax law", "tax code", "poem", "poem form", "poetry"]):
        text = f"Question {i} about {topic}"
        math_like = topic.startswith("tax")
        session.add(EvalOutcome(model_name="small", kind="qa", suite="qa", suite_version="t",
                                item_id=str(i), text=text, score=0.0 if math_like else 1.0))
        session.add(EvalOutcome(model_name="large", kind="qa", suite="qa", suite_version="t",
                                item_id=str(i), text=text, score=1.0))
    session.commit()

    code, out, err = yard("route", "train", "--json")
    assert code == 0, err
    trained = json.loads(out)
    assert trained["outcomes"] == 12 and trained["models"] == ["large", "small"]
    assert "brier" in trained["metrics"] or trained["metrics"]["n_dev"] == 0

    code, out, err = yard("route", "explain", "--kind", "qa", "--min-quality", "0.5", "--json",
                          "A question about tax law")
    assert code == 0, err
    decision = json.loads(out)
    assert decision["basis"] == "prediction"
    assert decision["predictor_version"] == trained["version"]
    by = {c["name"]: c for c in decision["candidates"]}
    assert by["large"]["predicted_quality"] > by["small"]["predicted_quality"]
    assert by["small"]["neighbours"] and by["small"]["evidence"] > 0

    code, out, _ = yard("route", "explain", "--kind", "summarize", "A question about tax law")
    assert "per-kind scores" in out  # no evidence for this kind: the old rule, unscored
