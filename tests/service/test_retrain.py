"""The worker's automatic retrain: due after enough new outcomes, once per arrival, one trainer
at a time across workers (a real Redis lock), off when the setting is 0."""

from __future__ import annotations

import redis
from modelyard_platform.jobs.retrain import LOCK, retrain_once
from modelyard_registry import catalog
from modelyard_registry.db import session_scope
from modelyard_registry.evidence.tables import EvalOutcome
from modelyard_registry.routing.artefacts import active_version, list_versions
from modelyard_registry.settings import Settings
from sqlmodel import Session


def add_outcomes(session: Session, start: int, n: int) -> None:
    for i in range(start, start + n):
        for model, score in (("cheap", float(i % 2)), ("dear", 1.0)):
            session.add(EvalOutcome(model_name=model, kind="qa", suite="qa", suite_version="t",
                                    item_id=f"q{i}", text=f"question number {i} about {i % 7}",
                                    score=score))
    session.commit()


def test_retrain_when_enough_new_evidence_arrived(settings: Settings, redis_url: str) -> None:
    settings = settings.model_copy(update={"route_retrain_min_new": 20, "redis_url": redis_url})
    with session_scope(settings.effective_database_url) as session:
        for name in ("cheap", "dear"):
            catalog.add_model(session, catalog.ModelCreate(
                name=name, backend=catalog.Backend.openai_compatible,
                base_url="http://127.0.0.1:9/v1", served_name=name, capabilities=["chat"]))
        add_outcomes(session, 0, 5)  # 10 outcomes: not enough
    assert retrain_once(settings) is None

    with session_scope(settings.effective_database_url) as session:
        add_outcomes(session, 5, 10)  # 30 in all, none trained on yet
    first = retrain_once(settings)
    assert first is not None
    assert retrain_once(settings) is None  # nothing new since

    with session_scope(settings.effective_database_url) as session:
        add_outcomes(session, 15, 10)  # 20 new
    held = redis.Redis.from_url(redis_url).lock(LOCK, timeout=30)
    assert held.acquire(blocking=False)
    assert retrain_once(settings) is None  # another worker is training
    held.release()
    second = retrain_once(settings)
    assert second is not None and second != first

    with session_scope(settings.effective_database_url) as session:
        active = active_version(session)
        assert active is not None and active.version == second and active.outcomes == 50
        assert [v.version for v in list_versions(session)] == [second, first]
        add_outcomes(session, 25, 20)
    assert retrain_once(settings.model_copy(update={"route_retrain_min_new": 0})) is None
