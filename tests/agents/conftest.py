"""A catalogue with the real SmolLM2 and a cascade over it, for running products directly."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelyard_registry.cascade import Cascade
from modelyard_registry.db import session_scope
from modelyard_registry.local_models import register_gguf
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings


@pytest.fixture(scope="module")
def runtimes() -> Iterator[RuntimeFactory]:
    factory = RuntimeFactory(Settings(n_ctx=4096))
    yield factory
    factory.close()


@pytest.fixture
def product_ctx(settings: Settings, smollm2_path: Path, runtimes: RuntimeFactory) -> Any:
    """What the platform hands a product: job id, team, progress sink, cascade, settings."""
    with session_scope(settings.effective_database_url) as session:
        register_gguf(session, settings, name="smollm2-135m", path=smollm2_path)
    cascade = Cascade(lambda: session_scope(settings.effective_database_url), settings, runtimes)
    events: list[dict[str, Any]] = []
    return types.SimpleNamespace(job_id="job-1", team_id=7, progress=events.append,
                                 cascade=cascade, settings=settings, options={}, events=events)


from tests.service.conftest import pg_url, redis_url, stack_factory  # noqa: E402, F401
