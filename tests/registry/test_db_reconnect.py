"""A pooled PostgreSQL connection the server closed is never handed out (``db.make_engine``).

The pool asks no query at checkout (no ``pool_pre_ping`` round trip, #15): a closed socket reads
as ready, and such a connection is replaced.  After the server restarts, or ends one session,
the next unit of work runs as if nothing happened, with no error for its caller.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest
from modelyard_registry.db import make_engine
from sqlalchemy import Engine, text

from tests.private_services import PrivatePostgres


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_every_pooled_connection_survives_a_server_restart(
    private_postgres: PrivatePostgres, mode: str
) -> None:
    engine = make_engine(private_postgres.admin_url)
    with ExitStack() as held:  # fill the pool: five connections, all idle after this
        connections = [held.enter_context(engine.connect()) for _ in range(5)]
        before = {c.execute(text("select pg_backend_pid()")).scalar() for c in connections}
    with private_postgres.outage(mode):
        pass
    with ExitStack() as held:  # each checkout meets a closed connection, replaced unseen
        connections = [held.enter_context(engine.connect()) for _ in range(5)]
        after = {c.execute(text("select pg_backend_pid()")).scalar() for c in connections}
    assert len(after) == 5 and not after & before
    engine.dispose()


def test_a_session_the_server_ended_is_replaced(private_postgres: PrivatePostgres) -> None:
    engine = make_engine(private_postgres.admin_url)
    with engine.connect() as connection:
        victim = connection.execute(text("select pg_backend_pid()")).scalar_one()
    admin_engine = make_engine(private_postgres.admin_url)
    with admin_engine.connect() as admin:
        admin.execute(text("select pg_terminate_backend(:pid)"), {"pid": victim})
    _wait_until_gone(admin_engine, victim)
    with engine.connect() as connection:  # the same pool slot: a fresh session, no error
        assert connection.execute(text("select pg_backend_pid()")).scalar() != victim
    engine.dispose()
    admin_engine.dispose()


def _wait_until_gone(engine: Engine, pid: int) -> None:
    """Wait until the server has ended the session, not just been asked to.

    ``pg_terminate_backend`` only signals the backend; it writes its farewell and closes the
    socket a moment later.  A checkout in that moment meets a connection that is still open,
    as it would with a ping too: what the pool promises starts once the session has ended.
    """
    deadline = time.monotonic() + 10
    query = text("select count(*) from pg_stat_activity where pid = :pid")
    while time.monotonic() < deadline:
        with engine.connect() as admin:
            if admin.execute(query, {"pid": pid}).scalar_one() == 0:
                return
        time.sleep(0.01)
    raise AssertionError(f"the server did not end session {pid} within 10 s")
