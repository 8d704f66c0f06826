"""Schema changes go through Alembic; the same revisions run on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from modelyard_registry.db import downgrade, make_engine, migrate
from sqlalchemy import inspect, text

PG = "postgresql://postgres@127.0.0.1:5432/test"


def test_sqlite_upgrade_is_idempotent_and_reversible(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    migrate(engine)  # a second start changes nothing
    tables = set(inspect(engine).get_table_names())
    assert {"models", "scores", "calls", "alembic_version"} <= tables
    downgrade(engine, "base")  # under migrate's locks: another thread may be migrating
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}


@pytest.mark.postgres
def test_postgres_upgrade_in_a_fresh_schema() -> None:
    try:
        psycopg.connect(PG, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 does not answer: {exc}")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        engine = make_engine(f"{PG}?options=-csearch_path%3D{schema}")
        migrate(engine)
        assert {"models", "scores", "calls"} <= set(inspect(engine).get_table_names())
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
