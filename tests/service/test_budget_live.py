"""Money on the live chat path, against a real OpenAI-compatible server on loopback.

- Concurrent chat calls of a team with a small budget (SQLite and PostgreSQL): the calls in
  flight hold their maximum cost, so the team's spend ends within its budget plus one call's
  maximum, the calls beyond it get 429 ``over_budget``, and no reservation is left behind.
- A client that goes away in the middle of a stream: the call is billed for the tokens it was
  sent (a per-token model used to bill $0), as an ``error`` row.
- A model server SIGKILLed after it read a (non-streamed) request: the attempt is an ``error``
  row billed its maximum (it used to bill $0), counted in the team's spend, reservation settled;
  a stream it dies on before its first token bills its prompt.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from modelyard_platform.models import BudgetReservation, Team
from modelyard_platform.usage import committed
from modelyard_registry.catalog import utcnow
from modelyard_registry.db import session_scope
from modelyard_registry.pricing import estimate_tokens
from modelyard_registry.routing.cascade import render_plain
from modelyard_registry.scores import Call
from modelyard_registry.settings import Settings
from sqlmodel import select

from ..conftest import free_port, wait_http
from .conftest import Stack, StackFactory, yard

MAX_TOKENS = 4
PRICE_OUT = 2500.0  # USD per million output tokens: a call's maximum is 4 x 2500e-6 = $0.01
MAX = MAX_TOKENS * PRICE_OUT / 1e6
BUDGET = 0.025
BODY = {"model": "priced", "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": "Count from one to twenty."}]}


def priced_stack(stack_factory: StackFactory, openai_server: str, database_url: str | None,
                 budget: float | None) -> Stack:
    """A live API whose only model is the loopback server, billed per output token."""
    stack = stack_factory(database_url=database_url, workers=0, with_model=False,
                          env={"MODELYARD_RATE_LIMIT_PER_MINUTE": "0"})
    yard(stack.env, "models", "add", "priced", "--endpoint", openai_server, "--served-name",
         "smollm2", "--price-in", "0", "--price-out", str(PRICE_OUT))
    if budget is not None:
        yard(stack.env, "teams", "budget", "ops", str(budget))
    return stack


def url_of(stack: Stack, database_url: str | None) -> str:
    return Settings(home=stack.home, database_url=database_url).effective_database_url


def test_concurrent_chat_calls_hold_the_budget(stack_factory: StackFactory, openai_server: str,
                                               database_url: str | None) -> None:
    stack = priced_stack(stack_factory, openai_server, database_url, BUDGET)
    n = 8
    start = threading.Barrier(n)
    statuses: list[tuple[int, str]] = []
    lock = threading.Lock()

    def call() -> None:
        with stack.client() as http:
            http.timeout = httpx.Timeout(300)  # a loaded machine: the server runs them in turn
            start.wait()
            response = http.post("/v1/chat/completions", json=BODY)
        kind = response.json()["error"]["type"] if response.status_code != 200 else ""
        with lock:
            statuses.append((response.status_code, kind))

    threads = [threading.Thread(target=call) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(400)
    assert len(statuses) == n
    ok = [s for s in statuses if s[0] == 200]
    refused = [s for s in statuses if s[0] == 429]
    assert ok and len(ok) + len(refused) == n, statuses
    assert all(kind == "over_budget" for _, kind in refused), statuses

    with session_scope(url_of(stack, database_url)) as session:
        calls = session.exec(select(Call)).all()
        spent = sum(c.cost_usd for c in calls)
        assert len(calls) == len(ok)
        assert spent <= BUDGET + MAX + 1e-9, f"spent ${spent} of ${BUDGET} ({len(ok)} calls)"
        assert not session.exec(select(BudgetReservation)).all()  # every call settled

    # Calls one at a time (llama_cpp.server under concurrency may answer some with no tokens,
    # so the wave alone need not have used the budget up): the first refusal comes once spend
    # reached the budget, and spend never passed it by more than one call's maximum.
    with stack.client() as http:
        http.timeout = httpx.Timeout(300)
        for _ in range(12):
            again = http.post("/v1/chat/completions", json=BODY)
            if again.status_code != 200:
                break
    assert again.status_code == 429 and again.json()["error"]["type"] == "over_budget"
    with session_scope(url_of(stack, database_url)) as session:
        spent = sum(c.cost_usd for c in session.exec(select(Call)).all())
    assert BUDGET <= spent <= BUDGET + MAX + 1e-9


def test_a_stream_the_client_leaves_is_billed_for_what_it_was_sent(
        stack_factory: StackFactory, openai_server: str) -> None:
    stack = priced_stack(stack_factory, openai_server, None, None)
    body = {**BODY, "max_tokens": 200, "stream": True,
            "messages": [{"role": "user", "content": "Write a long story about a dragon."}]}
    request_id = ""
    delivered = 0
    with stack.client() as http, http.stream("POST", "/v1/chat/completions",
                                                        json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            request_id = chunk["id"]
            if chunk["choices"][0]["delta"].get("content"):
                delivered += 1
            if delivered == 3:
                break  # the client goes away mid-stream
    url = url_of(stack, None)
    deadline = time.monotonic() + 60
    row: Call | None = None
    while row is None and time.monotonic() < deadline:
        with session_scope(url) as session:
            row = session.exec(select(Call).where(Call.request_id == request_id)).first()
        time.sleep(0.2)
    assert row is not None, "the abandoned stream left no usage row"
    assert row.outcome == "error"
    assert delivered <= row.completion_tokens < 200
    assert row.cost_usd >= row.completion_tokens * PRICE_OUT / 1e6 > 0
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:  # the API still serves
        assert http.get("/healthz").status_code == 200


@pytest.fixture
def dying_stack(stack_factory: StackFactory) -> Iterator[tuple[Stack, subprocess.Popen[bytes]]]:
    """A live API whose only model (``dying``, priced per token) SIGKILLs itself on a request;
    team ``ops`` has a budget, so each call holds a reservation."""
    port = free_port()
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("dying_backend.py")),
                               str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", 30, server)
        stack = stack_factory(workers=0, with_model=False,
                              env={"MODELYARD_RATE_LIMIT_PER_MINUTE": "0",
                                   "MODELYARD_MAX_RETRIES": "1"})
        yard(stack.env, "models", "add", "dying", "--endpoint", f"http://127.0.0.1:{port}/v1",
             "--served-name", "dying", "--price-in", "1000", "--price-out", str(PRICE_OUT))
        yard(stack.env, "teams", "budget", "ops", "1")
        yield stack, server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)


def billed(stack: Stack) -> tuple[Call, float, float]:
    """The one usage row, and team ops's spend and reservations this month."""
    with session_scope(url_of(stack, None)) as session:
        row = session.exec(select(Call)).one()
        team = session.exec(select(Team).where(Team.name == "ops")).one()
        assert team.id is not None
        spent, held = committed(session, team.id, utcnow())
        assert not session.exec(select(BudgetReservation)).all()
        return row, spent, held


PROMPT_USD = estimate_tokens(render_plain(BODY["messages"])) * 1000 / 1e6  # type: ignore[arg-type]


def test_a_remote_server_killed_mid_request_bills_the_attempt_its_maximum(
        dying_stack: tuple[Stack, subprocess.Popen[bytes]]) -> None:
    stack, server = dying_stack
    with stack.client() as http:
        response = http.post("/v1/chat/completions", json={**BODY, "model": "dying"})
    assert server.wait(30) == -9  # it read the request, then died: the call was in flight
    assert response.status_code >= 500, response.text

    row, spent, held = billed(stack)
    assert row.outcome == "error" and row.model_name == "dying"
    assert "billed its maximum" in row.reason, row.reason
    assert row.cost_usd == pytest.approx(PROMPT_USD + MAX) and row.cost_usd > 0
    assert spent == pytest.approx(row.cost_usd) and held == 0.0


def test_a_stream_whose_server_died_before_its_first_token_bills_its_prompt(
        dying_stack: tuple[Stack, subprocess.Popen[bytes]]) -> None:
    stack, server = dying_stack
    with stack.client() as http, http.stream(
            "POST", "/v1/chat/completions",
            json={**BODY, "model": "dying", "stream": True}) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    assert server.wait(30) == -9
    assert "error" in json.loads(lines[-1][6:]), lines

    row, spent, held = billed(stack)
    assert row.outcome == "error" and row.completion_tokens == 0
    assert row.cost_usd == pytest.approx(PROMPT_USD) and row.cost_usd > 0
    assert spent == pytest.approx(row.cost_usd) and held == 0.0
