"""On PostgreSQL (the deployed shape), a predictor trained by one process is served by another
whose home is elsewhere: the artefact travels through the database, not a shared volume."""

from __future__ import annotations

from pathlib import Path

from modelyard_registry import catalog
from modelyard_registry.db import session_scope
from modelyard_registry.evidence.tables import EvalOutcome
from modelyard_registry.routing.serving import ActivePredictor
from modelyard_registry.routing.training import train
from modelyard_registry.settings import Settings

from tests.registry.routing.synthetic import PRICE, outcomes


def test_a_version_trained_on_one_machine_is_served_on_another(pg_url: str,
                                                                tmp_path: Path) -> None:
    trainer = Settings(home=tmp_path / "worker", database_url=pg_url)
    server = Settings(home=tmp_path / "api", database_url=pg_url)
    with session_scope(trainer.effective_database_url) as session:
        for name, price in PRICE.items():
            catalog.add_model(session, catalog.ModelCreate(
                name=name, backend=catalog.Backend.openai_compatible,
                base_url="http://127.0.0.1:9/v1", served_name=name, price_in=price * 1000,
                price_out=price * 1000, capabilities=["chat"]))
        for o in outcomes(40):
            session.add(EvalOutcome(model_name=o.model, kind=o.kind, suite="qa",
                                    suite_version="t", item_id=o.item_id, text=o.text,
                                    score=o.score))
        session.commit()
        version = train(session, trainer)
    assert not (trainer.home_dir / "routing").exists()
    with session_scope(server.effective_database_url) as session:
        active = ActivePredictor(server, check_interval_s=0)
        got = active.predictions(session, "qa", "Please answer briefly. sonnet rhyme verse 3",
                                 ["calc", "bard"])
    assert active.version == version.version and got is not None
    assert got["bard"].p > got["calc"].p
