"""On PostgreSQL, plans outlive read-only transactions and rollbacks still undo writes.

psycopg forgets a connection's prepared statements at every ROLLBACK; ``db.make_engine`` ends a
transaction that changed nothing with COMMIT instead (``pg_prepared``).  What callers rely on
stays: whatever a transaction wrote is gone after its rollback.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from modelyard_registry.db import make_engine
from sqlalchemy import Engine, text
from sqlmodel import Session

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def table() -> Iterator[tuple[Engine, str]]:
    """An engine on the test database and a fresh table ``(id int primary key, v int)``."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute(f"INSERT INTO {name} VALUES (1, 0)")
    engine = make_engine(PG_ADMIN)
    try:
        yield engine, name
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {name}")


def _prepared(session: Session) -> list[str]:
    found = session.execute(text("SELECT statement FROM pg_prepared_statements"))
    return [str(row[0]) for row in found]


def test_a_statement_run_often_stays_prepared_across_read_only_sessions(
        table: tuple[Engine, str]) -> None:
    engine, name = table
    for _ in range(8):  # one connection, each session's transaction ended without a commit
        with Session(engine) as session:
            session.execute(text(f"SELECT v FROM {name} WHERE id = :id"), {"id": 1}).one()
            # a claim another worker won: a conditional write that matched no row
            session.execute(text(f"UPDATE {name} SET v = v + 1 WHERE id = :id"), {"id": 2})
            session.rollback()
            kept = _prepared(session)
    # both prepared on their fifth run, and kept since
    assert any(s.startswith("SELECT v FROM") for s in kept)
    assert any(s.startswith("UPDATE") for s in kept)


def test_a_rollback_still_undoes_what_the_transaction_wrote(table: tuple[Engine, str]) -> None:
    engine, name = table
    with Session(engine) as session:
        session.execute(text(f"SELECT v FROM {name}")).all()
        session.execute(text(f"UPDATE {name} SET v = 5 WHERE id = :id"), {"id": 2})  # no row
        session.execute(text(f"INSERT INTO {name} VALUES (2, 2)"))
        session.rollback()
    with Session(engine) as session:  # left without a commit: the pool's reset rolls back
        session.execute(text(f"UPDATE {name} SET v = 7 WHERE id = 1"))
    with Session(engine) as session, pytest.raises(Exception, match="duplicate key"):
        session.execute(text(f"INSERT INTO {name} VALUES (1, 9)"))  # a failed transaction
    with Session(engine) as session:
        rows = session.execute(text(f"SELECT id, v FROM {name} ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, 0)]


def test_writes_that_report_no_row_are_still_rolled_back(table: tuple[Engine, str]) -> None:
    """Row count 0 means "changed nothing" only for a plain INSERT, UPDATE or DELETE."""
    engine, name = table
    made = f"{name}_copy"
    with Session(engine) as session:  # DDL whose SELECT found no row: "SELECT 0"
        session.execute(text(f"CREATE TABLE {made} AS SELECT * FROM {name} WHERE false"))
        session.rollback()
    with Session(engine) as session:  # a writing CTE under a statement that returns no row
        session.execute(text(f"WITH gone AS (DELETE FROM {name} RETURNING id) "
                             "SELECT id FROM gone WHERE false")).all()
        session.rollback()
    with Session(engine) as session:
        exists = session.execute(text("SELECT to_regclass(:t)"), {"t": made}).scalar()
        rows = session.execute(text(f"SELECT count(*) FROM {name}")).scalar()
    assert exists is None and rows == 1
