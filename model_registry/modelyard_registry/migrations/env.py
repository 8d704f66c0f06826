"""Alembic environment: runs on the connection handed over by ``modelyard_registry.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    if connection.dialect.name == "postgresql":
        # Many processes (API, workers) migrate at start-up: serialise them.
        connection.execute(text("SELECT pg_advisory_xact_lock(7416001)"))
    context.configure(
        connection=connection,
        target_metadata=None,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
