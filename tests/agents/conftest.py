"""A catalogue with the real SmolLM2 and a cascade over it, for running products directly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from modelyard_agents.contract import RunContext
from modelyard_registry.db import session_scope
from modelyard_registry.local_models import register_gguf
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings


@pytest.fixture(scope="module")
def runtimes() -> Iterator[RuntimeFactory]:
    factory = RuntimeFactory(Settings(n_ctx=4096))
    yield factory
    factory.close()


@dataclass
class RecordingContext(RunContext):
    """A run context that keeps every progress event for the test to read."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.progress = self.events.append


@pytest.fixture
def product_ctx(settings: Settings, smollm2_path: Path, runtimes: RuntimeFactory
                ) -> RecordingContext:
    """What the platform hands a product: job id, team, progress sink, cascade, settings."""
    with session_scope(settings.effective_database_url) as session:
        register_gguf(session, settings, name="smollm2-135m", path=smollm2_path)
    cascade = Cascade(lambda: session_scope(settings.effective_database_url), settings, runtimes)
    return RecordingContext(job_id="job-1", team_id=7, cascade=cascade, settings=settings)


from tests.service.conftest import pg_url, redis_url, stack_factory  # noqa: E402, F401
