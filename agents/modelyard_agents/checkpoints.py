"""The LangGraph checkpointer for a deployment: SQLite by default, PostgreSQL in production.

Thread id = job id, so a redelivered job resumes at its last completed node.  The checkpoint
tables are created by the database migration step (``modelyard_registry.db.migrate``), once per
deployment and under a lock, never here: a per-job ``setup()`` raced between workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelyard_registry.db import checkpoint_file, get_engine, postgres_dsn
from modelyard_registry.settings import Settings


@contextmanager
def checkpointer(settings: Settings) -> Iterator[Any]:
    url = settings.effective_database_url
    get_engine(url)  # migrated (checkpoint tables included) once per process
    if url.startswith(("postgresql", "postgres")):
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(postgres_dsn(url)) as saver:
            yield saver
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = checkpoint_file(url) or settings.home_dir / "checkpoints.db"
        with SqliteSaver.from_conn_string(str(path)) as saver:
            yield saver
