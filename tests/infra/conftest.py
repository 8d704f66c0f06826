"""Fixtures for infra/: files as deployed (compose interpolated, kustomize overlays rendered)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from modelyard_platform.metrics import Metrics
from modelyard_registry.db import session_scope
from modelyard_registry.scores import Call
from modelyard_registry.settings import Settings
from prometheus_client.parser import text_string_to_metric_families

# The real-stack fixtures of the service tests (API + worker subprocesses, a fresh PostgreSQL
# database per test); `redis_url` below points them at this directory's own Redis database.
from tests.conftest import fresh_redis, redis_test_url
from tests.service.conftest import pg_url, stack_factory

from .compose_env import interpolate
from .kustomize import Resource, load_documents, render

__all__ = ["pg_url", "stack_factory"]

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))


@pytest.fixture(scope="session")
def compose_raw() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "compose.yaml").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def compose(compose_raw: dict[str, Any]) -> dict[str, Any]:
    """compose.yaml with every variable at its default, as `docker compose config` shows it."""
    return interpolate(compose_raw, {})  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def example_secret() -> Resource:
    (secret,) = load_documents(K8S / "secret.example.yaml")
    return secret


@pytest.fixture(scope="session", params=[p.name for p in OVERLAYS])
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Resource]]:
    return request.param, render(K8S / "overlays" / request.param)


# Redis database 13 is tests/infra's own: the service tests (db 11) may run at the same time.
INFRA_REDIS_URL = redis_test_url(13)


@pytest.fixture
def redis_url() -> str:
    return fresh_redis(INFRA_REDIS_URL)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Sample name -> label names, from a real /metrics rendering with one request and call."""
    home = tmp_path_factory.mktemp("metrics-home")
    settings = Settings(home=home, database_url=None)
    metrics = Metrics(settings.effective_database_url)
    with session_scope(settings.effective_database_url) as session:
        session.add(Call(request_id="r1", model_name="m", outcome="accepted", prompt_tokens=3,
                         completion_tokens=5, cost_usd=0.001))
        session.commit()
    metrics.observe("GET", "/healthz", 200, 0.01)
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names
