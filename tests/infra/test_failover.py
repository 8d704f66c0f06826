"""A remote backend goes down: it is marked unhealthy and traffic moves to the next adequate model.

A real OpenAI-compatible server (llama_cpp.server serving SmolLM2, the API vLLM speaks) stands in
for a vLLM deployment registered as an `openai_compatible` model; the same GGUF is registered as a
local llama.cpp model.  Both get a measured Score, so both are adequate; the remote one is priced
cheaper, so it wins while it is healthy.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelyard_registry import catalog
from modelyard_registry.db import session_scope
from modelyard_registry.local_models import register_gguf
from modelyard_registry.remote_models import refresh_health, register_remote
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.routing.explain import route
from modelyard_registry.runtimes import GenerationRequest, RuntimeFactory
from modelyard_registry.scores import Call, Score
from modelyard_registry.settings import Settings
from modelyard_registry.taskspec import TaskSpec
from sqlmodel import Session, col, select

from ..conftest import free_port, wait_http

REMOTE, LOCAL = "vllm-standin", "smollm2-135m"
MESSAGES = [{"role": "user", "content": "Say hello."}]


class StandInServer:
    """One llama_cpp.server process on a fixed port that the test can stop and start again."""

    def __init__(self, model: Path) -> None:
        self.model = model
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
             "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(self.port),
             "--n_ctx", "1024", "--n_threads", "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"{self.base_url}/models", 90, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None


@pytest.fixture
def stand_in(smollm2_path: Path) -> Iterator[StandInServer]:
    server = StandInServer(smollm2_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def score(model: str, value: float, tokens_per_s: float) -> Score:
    return Score(model_name=model, kind="classify", metric="accuracy", value=value, n=50,
                 ci_low=value - 0.1, ci_high=min(1.0, value + 0.1), suite_version="test",
                 tokens_per_s=tokens_per_s, latency_s=0.5, prompt_tokens_mean=40,
                 completion_tokens_mean=20)


def calls(session: Session, request_id: str) -> list[tuple[str, str]]:
    rows = session.exec(
        select(Call).where(Call.request_id == request_id).order_by(col(Call.attempt))
    ).all()
    return [(c.model_name, c.outcome) for c in rows]


@pytest.mark.slow
def test_router_moves_traffic_off_an_unhealthy_remote_and_back(
    stand_in: StandInServer, smollm2_path: Path, settings: Settings, session: Session
) -> None:
    register_remote(session, settings, name=REMOTE, base_url=stand_in.base_url,
                    served_name="smollm2", price_in=0.01, price_out=0.01,
                    response_format="json_object")
    register_gguf(session, settings, name=LOCAL, path=smollm2_path,
                  capabilities=["chat", "completion", "json_schema"])
    session.add(score(REMOTE, 0.8, 200.0))
    session.add(score(LOCAL, 0.8, 100.0))
    session.commit()
    assert catalog.get_model(session, REMOTE).health.value == "healthy"

    spec = TaskSpec.build(kind="classify", min_quality=0.5, max_output_tokens=8)
    runtimes = RuntimeFactory(settings)
    cascade = Cascade(lambda: session_scope(settings.effective_database_url), settings, runtimes)
    request = GenerationRequest(messages=MESSAGES, max_tokens=8)
    try:
        # Healthy: the remote model is adequate and cheapest, and real calls go to it.
        decision = route(session, settings, spec, "Say hello.")
        assert decision.chosen is not None and decision.chosen.name == REMOTE
        statuses = {c.name: c.status for c in decision.candidates}
        assert statuses == {REMOTE: "chosen", LOCAL: "adequate"}
        assert cascade.run(spec, request, request_id="healthy").model == REMOTE
        assert calls(session, "healthy") == [(REMOTE, "accepted")]

        stand_in.stop()

        # Down, before any probe: the call to it fails, is recorded, the same request
        # escalates to the next adequate model, and the refused connection marks it unhealthy.
        assert cascade.run(spec, request, request_id="down").model == LOCAL
        assert calls(session, "down") == [(REMOTE, "error"), (LOCAL, "accepted")]
        session.expire_all()
        down = catalog.get_model(session, REMOTE)
        assert down.health.value == "unhealthy" and "cannot reach" in (down.health_error or "")

        # A probe agrees; either way the router no longer even tries it.
        (healthy, error) = refresh_health(session, settings)[REMOTE]
        assert not healthy and error
        session.expire_all()
        assert catalog.get_model(session, REMOTE).health.value == "unhealthy"
        decision = route(session, settings, spec, "Say hello.")
        assert decision.chosen is not None and decision.chosen.name == LOCAL
        rejected = {c.name: c for c in decision.candidates}[REMOTE]
        assert rejected.status == "rejected" and "unhealthy" in rejected.reason
        assert cascade.run(spec, request, request_id="unhealthy").model == LOCAL
        assert calls(session, "unhealthy") == [(LOCAL, "accepted")]

        # Back up and probed: traffic returns to the cheaper remote model.
        stand_in.start()
        assert refresh_health(session, settings)[REMOTE] == (True, None)
        session.expire_all()
        decision = route(session, settings, spec, "Say hello.")
        assert decision.chosen is not None and decision.chosen.name == REMOTE
        assert cascade.run(spec, request, request_id="recovered").model == REMOTE
    finally:
        runtimes.close()
