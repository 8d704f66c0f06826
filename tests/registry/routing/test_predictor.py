"""The per-request predictor on synthetic evidence: it learns what the per-kind score hides,
falls back to per-kind scores without evidence, and survives a save/load unchanged."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from modelyard_registry.errors import InvalidInput
from modelyard_registry.routing.embed import (
    HashedNgramEmbedder,
    StaticEmbedder,
    default_embedder,
    embedder_by_name,
)
from modelyard_registry.routing.outcomes import Outcome
from modelyard_registry.routing.predictor import fit_predictor, load_predictor

from .synthetic import outcomes, request


@pytest.mark.parametrize("method", ["knn", "logistic"])
def test_predictions_follow_the_request_not_the_kind(method: str) -> None:
    # settings for clean evidence (the defaults shrink harder: public data is noisy)
    predictor = fit_predictor(outcomes(), HashedNgramEmbedder(), method=method, temperature=0.5,
                              prior_strength=2, l2=0.3)
    rng = random.Random(11)
    math = predictor.predict("qa", request(rng, "math"), ["calc", "bard", "oracle-xl"])
    poem = predictor.predict("qa", request(rng, "poem"), ["calc", "bard", "oracle-xl"])
    assert math["calc"].p > 0.75 and poem["calc"].p < 0.25
    assert poem["bard"].p > 0.75 and math["bard"].p < 0.25
    assert 0.4 < (math["calc"].prior or 0) < 0.6  # what the per-kind score would have said
    assert math["calc"].evidence > 1.0
    if method == "knn":
        near = math["calc"].neighbours
        assert near and near[0].similarity >= near[-1].similarity
        assert all(any(w in n.text for w in ("sum", "add", "multiply", "divide", "subtract",
                                              "integer", "product", "number", "equals", "digits",
                                              "remainder", "square")) for n in near)


def test_without_evidence_for_the_kind_the_per_kind_score_decides() -> None:
    priors = {("calc", "summarize"): 0.62, ("newcomer", "qa"): 0.4}
    predictor = fit_predictor(outcomes(60), HashedNgramEmbedder(), priors=priors)
    assert predictor.kinds == ["qa"]
    got = predictor.predict("summarize", "Summarise this report.", ["calc", "bard", "ghost"])
    assert set(got) == {"calc"}  # bard has no prior for the kind, ghost is unknown
    assert got["calc"].p == 0.62 and got["calc"].evidence == 0.0 and not got["calc"].neighbours
    # a catalogue model with a per-kind score but no per-item evidence keeps its score
    qa = predictor.predict("qa", "add the digits", ["newcomer", "calc"])
    assert qa["newcomer"].p == 0.4 and qa["newcomer"].evidence == 0.0
    assert qa["calc"].evidence > 0


@pytest.mark.parametrize("method", ["knn", "logistic"])
def test_save_and_load_give_identical_predictions(tmp_path: Path, method: str) -> None:
    predictor = fit_predictor(outcomes(80), HashedNgramEmbedder(), method=method,
                              priors={("calc", "chat"): 0.3})
    predictor.save(tmp_path / "p")
    assert not list((tmp_path / "p").glob("*.pkl"))
    loaded = load_predictor(tmp_path / "p")
    rng = random.Random(5)
    for text in [request(rng, "math"), request(rng, "poem"), "something else entirely"]:
        for kind in ("qa", "chat"):
            assert (loaded.predict(kind, text, ["calc", "bard", "oracle-xl"])
                    == predictor.predict(kind, text, ["calc", "bard", "oracle-xl"]))
    assert loaded.kinds == predictor.kinds


def test_a_manifest_of_another_version_or_embedder_is_refused(tmp_path: Path) -> None:
    fit_predictor(outcomes(40), HashedNgramEmbedder()).save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(InvalidInput, match="format 99"):
        load_predictor(tmp_path)
    manifest["embedder"]["version"] = "0"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInput, match="retrain"):
        load_predictor(tmp_path)
    with pytest.raises(InvalidInput, match="not a saved predictor"):
        load_predictor(tmp_path / "missing")


def test_calibration_maps_out_of_fold_estimates_monotonically() -> None:
    predictor = fit_predictor(outcomes(), HashedNgramEmbedder(), calibrate=True)
    grid = np.linspace(0, 1, 21)
    mapped = predictor.calibrated(grid)
    assert np.all(np.diff(mapped) >= 0) and mapped.min() >= 0 and mapped.max() <= 1


def test_bad_settings_and_empty_evidence_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="no outcomes"):
        fit_predictor([], HashedNgramEmbedder())
    with pytest.raises(InvalidInput, match="unknown predictor setting"):
        fit_predictor(outcomes(10), HashedNgramEmbedder(), neighbours=3)


def test_embedders_are_unit_length_and_deterministic() -> None:
    texts = ["Add 2 and 3.", "Write a haiku about the sea.", ""]
    for embedder in (HashedNgramEmbedder(), StaticEmbedder()):
        a, b = embedder.embed(texts), embedder.embed(texts)
        assert a.shape == (3, embedder.dim) and a.dtype == np.float32
        assert np.array_equal(a, b)
        assert np.allclose(np.linalg.norm(a[:2], axis=1), 1.0, atol=1e-5)
        assert not a[2].any()  # nothing to embed: a zero row, not NaN
        assert embedder_by_name(embedder.name, embedder.version).name == embedder.name
    assert default_embedder().name == HashedNgramEmbedder.name
    with pytest.raises(InvalidInput, match="unknown embedder"):
        embedder_by_name("nope")


def test_outcome_weights_count() -> None:
    rows = outcomes(40)
    weak = [Outcome(**{**o.__dict__, "weight": 0.01}) if o.model == "calc" else o for o in rows]
    flipped = [Outcome(**{**o.__dict__, "score": 1.0 - o.score, "item_id": o.item_id + "b",
                          "weight": 1.0}) for o in rows if o.model == "calc"]
    strong = fit_predictor(rows + flipped, HashedNgramEmbedder(), calibrate=False)
    faint = fit_predictor(weak + flipped, HashedNgramEmbedder(), calibrate=False)
    text = request(random.Random(1), "math")
    # with the original grades weighted down, the flipped ones dominate the estimate
    assert faint.predict("qa", text, ["calc"])["calc"].p < strong.predict("qa", text,
                                                                          ["calc"])["calc"].p
