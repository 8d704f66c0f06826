"""Budget reservations hold a team's budget under concurrent admissions (SQLite and PostgreSQL).

The admission race in its bare form, on a real database: many threads admit calls of one team at
the same moment, each for the same maximum; the calls then settle (usage row in, reservation
out, one transaction).  Spend ends within the budget plus one call's maximum, and the next call
is refused.  A reservation left by a process that died counts until it expires, not forever; a
live stream renews its own, so it outlives its lifetime and a concurrent spender stays refused.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from modelyard_platform.budget import TeamBudgets, release, reserve
from modelyard_platform.models import BudgetReservation, Team
from modelyard_platform.usage import OverBudget, check_budget, committed
from modelyard_registry.catalog import utcnow
from modelyard_registry.db import session_scope
from modelyard_registry.remote_models import register_remote
from modelyard_registry.routing.cascade import Cascade
from modelyard_registry.runtimes import GenerationRequest, RuntimeFactory
from modelyard_registry.scores import Call
from modelyard_registry.settings import Settings
from modelyard_registry.taskspec import TaskSpec
from sqlmodel import select

MAX = 0.01  # each call's maximum (USD)
BUDGET = 0.035  # admits 4 calls at once: 0, 0.01, 0.02 and 0.03 are below it


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'budget.db'}"
    return str(request.getfixturevalue("pg_url"))


def new_team(url: str, budget: float | None) -> int:
    with session_scope(url) as session:
        team = Team(name="spenders", budget_usd=budget)
        session.add(team)
        session.commit()
        assert team.id is not None
        return team.id


def settle(url: str, team_id: int, request_id: str, reservation: int, cost: float) -> None:
    """What the cascade does when a call ends: its usage row and its release, one transaction."""
    with session_scope(url) as session:
        session.add(Call(request_id=request_id, team_id=team_id, model_name="m", cost_usd=cost,
                         outcome="accepted"))
        release(reservation)(session)
        session.commit()


def test_concurrent_calls_overshoot_by_at_most_one_maximum(db_url: str) -> None:
    team_id = new_team(db_url, BUDGET)
    n = 16
    start = threading.Barrier(n)
    admitted: dict[str, int] = {}
    refused: list[str] = []
    lock = threading.Lock()

    def admit(i: int) -> None:
        request_id = f"req-{i}"
        start.wait()
        try:
            with session_scope(db_url) as session:
                found = reserve(session, team_id=team_id, request_id=request_id, job_id=None,
                                amount_usd=MAX)
        except OverBudget as exc:
            assert exc.error_type == "over_budget"
            with lock:
                refused.append(request_id)
            return
        assert found is not None
        with lock:
            admitted[request_id] = found

    threads = [threading.Thread(target=admit, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(admitted) + len(refused) == n
    assert len(admitted) == 4, f"admitted {len(admitted)} of {n} concurrent calls"

    for request_id, reservation in admitted.items():  # each call uses its whole maximum
        settle(db_url, team_id, request_id, reservation, MAX)
    with session_scope(db_url) as session:
        spent, held = committed(session, team_id, utcnow())
        assert held == 0.0
        assert not session.exec(select(BudgetReservation)).all()
        assert spent <= BUDGET + MAX + 1e-12
        with pytest.raises(OverBudget):  # the (N+1)th call
            reserve(session, team_id=team_id, request_id="one-more", job_id=None,
                    amount_usd=MAX)
        with pytest.raises(OverBudget):  # and a job submission
            check_budget(session, team_id)


def test_a_leaked_reservation_counts_until_it_expires(db_url: str) -> None:
    team_id = new_team(db_url, MAX)
    with session_scope(db_url) as session:
        # A call whose process died: its reservation is never settled.
        assert reserve(session, team_id=team_id, request_id="died", job_id=None,
                       amount_usd=MAX) is not None
        with pytest.raises(OverBudget, match="reserved by calls in flight"):
            reserve(session, team_id=team_id, request_id="next", job_id=None, amount_usd=MAX)
        # Once expired it neither counts nor stays: the next admission deletes it.
        leaked = session.exec(select(BudgetReservation)).one()
        leaked.expires_at = utcnow()
        session.add(leaked)
        session.commit()
        assert reserve(session, team_id=team_id, request_id="next", job_id=None,
                       amount_usd=MAX) is not None
        rows = session.exec(select(BudgetReservation)).all()
        assert [r.request_id for r in rows] == ["next"]


def test_a_team_without_budget_reserves_nothing(db_url: str) -> None:
    team_id = new_team(db_url, None)
    with session_scope(db_url) as session:
        assert reserve(session, team_id=team_id, request_id="free", job_id=None,
                       amount_usd=1e9) is None
        assert not session.exec(select(BudgetReservation)).all()


PIECES, EVERY_S = 30, 0.1  # a 3 s stream
TTL_S = 1.0  # the reservation's lifetime: a third of the stream


@pytest.fixture
def slow_stream() -> Iterator[str]:
    """An OpenAI-compatible server on loopback that streams a piece every ``EVERY_S``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            chunks = [{"choices": [{"index": 0, "delta": {"content": "a"}}]}] * PIECES + [
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
                {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": PIECES}}]
            for chunk in chunks:
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
                time.sleep(EVERY_S)
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_live_stream_keeps_its_reservation_past_its_lifetime(
        db_url: str, tmp_path: Path, slow_stream: str) -> None:
    settings = Settings(home=tmp_path / "home", database_url=db_url,
                        budget_reservation_ttl_s=TTL_S)
    url = settings.effective_database_url
    with session_scope(url) as session:  # a stream's maximum: 100 tokens x $0.01 = the budget
        register_remote(session, settings, name="slow", base_url=slow_stream,
                        served_name="slow", price_out=1e4, check=False)
    team_id = new_team(url, 1.0)
    sessions = lambda: session_scope(url)  # noqa: E731
    runtimes = RuntimeFactory(settings)
    cascade = Cascade(sessions, settings, runtimes,
                      budget=TeamBudgets(sessions, settings.budget_reservation_ttl_s))
    try:
        _, events = cascade.stream(
            TaskSpec.build(kind="chat", pinned_model="slow", max_output_tokens=100),
            GenerationRequest(messages=[{"role": "user", "content": "Go on."}], max_tokens=100),
            request_id="long", team_id=team_id)
        started = time.monotonic()
        refused = 0
        for _ in events:
            if time.monotonic() - started < 2 * TTL_S:
                continue
            # Past twice its lifetime, the stream's reservation still holds the budget.
            with session_scope(url) as session, pytest.raises(OverBudget):
                reserve(session, team_id=team_id, request_id=f"spender-{refused}",
                        job_id=None, amount_usd=0.01)
            refused += 1
        assert refused >= 3, f"the stream ended {time.monotonic() - started:.1f}s in"
    finally:
        runtimes.close()
    with session_scope(url) as session:  # settled with its usage row: the budget is free again
        assert not session.exec(select(BudgetReservation)).all()
        assert session.exec(select(Call)).one().cost_usd == pytest.approx(PIECES * 1e4 / 1e6)
        assert reserve(session, team_id=team_id, request_id="after", job_id=None,
                       amount_usd=0.01) is not None
