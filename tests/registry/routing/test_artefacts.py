"""Trained predictors live in the database: another process with another home (another
machine) serves the same version, a retrain is picked up at the next check and not before, and
``--export`` files load to the same predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from modelyard_registry import catalog
from modelyard_registry.evidence.tables import EvalOutcome
from modelyard_registry.routing.artefacts import (
    RoutingArtefact,
    RoutingVersion,
    artefact_dir,
    load_version,
)
from modelyard_registry.routing.embed import HashedNgramEmbedder
from modelyard_registry.routing.predictor import fit_predictor, load_predictor
from modelyard_registry.routing.serving import ActivePredictor
from modelyard_registry.routing.training import train
from modelyard_registry.settings import Settings
from sqlmodel import Session

from .synthetic import PRICE, outcomes

ASK = "Please answer the following request carefully and briefly. haiku moon river 7"


def _evidence(session: Session, rows: int = 40, suite: str = "qa") -> None:
    for name, price in PRICE.items():
        if catalog.find_model(session, name) is None:
            catalog.add_model(session, catalog.ModelCreate(
                name=name, backend=catalog.Backend.openai_compatible,
                base_url="http://127.0.0.1:9/v1", served_name=name, price_in=price * 1000,
                price_out=price * 1000, capabilities=["chat"]))
    for o in outcomes(rows):
        session.add(EvalOutcome(model_name=o.model, kind=o.kind, suite=suite, suite_version="t",
                                item_id=o.item_id, text=o.text, score=o.score))
    session.commit()


def _elsewhere(settings: Settings, tmp_path: Path) -> Settings:
    """The same database seen from a process whose home is another folder."""
    return Settings(home=tmp_path / "other-machine",
                    database_url=settings.effective_database_url)


def test_a_version_is_stored_in_the_database_and_served_from_another_home(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    _evidence(session)
    version = train(session, settings)
    stored = session.get(RoutingArtefact, version.version)
    assert stored is not None and stored.size_bytes > 0 and stored.format_version == 1
    assert not (settings.home_dir / "routing").exists()  # nothing written under the home

    served = ActivePredictor(_elsewhere(settings, tmp_path), check_interval_s=0)
    got = served.predictions(session, "qa", ASK, ["calc", "bard", "oracle-xl"])
    assert served.version == version.version and got is not None
    assert got["bard"].p > got["calc"].p  # a poem: the bard's neighbours answered it
    assert got["bard"].neighbours


def test_a_retrain_is_loaded_at_the_next_check_not_before(
    session: Session, settings: Settings
) -> None:
    _evidence(session, 20)
    first = train(session, settings)
    slow = ActivePredictor(settings, check_interval_s=3600)
    eager = ActivePredictor(settings, check_interval_s=0)
    assert slow.current(session) is not None and eager.current(session) is not None
    assert slow.version == eager.version == first.version

    _evidence(session, 40, suite="qa-more")
    second = train(session, settings)
    assert second.version != first.version
    slow.current(session)
    eager.current(session)
    assert slow.version == first.version  # within its interval: no query, the old version
    assert eager.version == second.version


def test_export_writes_files_that_load_to_the_same_predictions(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    _evidence(session)
    version = train(session, settings, export=tmp_path / "export")
    from_files = load_predictor(tmp_path / "export")
    from_db = load_version(session, settings, version.version)
    texts = [ASK, "Please answer the following request carefully. add sum digits 12"]
    assert np.allclose(from_files.predict_many("qa", texts), from_db.predict_many("qa", texts))


def test_a_version_trained_before_the_artefact_table_still_loads_from_its_files(
    session: Session, settings: Settings
) -> None:
    predictor = fit_predictor(outcomes(40), HashedNgramEmbedder())
    predictor.save(artefact_dir(settings, "20261101T000000000000Z"))
    session.add(RoutingVersion(version="20261101T000000000000Z", method="knn",
                               embedder="hashed-ngram", outcomes=120, items=40))
    session.commit()
    served = ActivePredictor(settings, check_interval_s=0)
    assert served.current(session) is not None
    assert served.version == "20261101T000000000000Z"
