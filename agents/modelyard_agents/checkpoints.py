"""The LangGraph checkpointer for a deployment: SQLite by default, PostgreSQL in production.

Thread id = job id, so a redelivered job resumes at its last completed node.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelyard_registry.settings import Settings


@contextmanager
def checkpointer(settings: Settings) -> Iterator[Any]:
    url = settings.effective_database_url
    if url.startswith(("postgresql", "postgres")):
        from langgraph.checkpoint.postgres import PostgresSaver

        conn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with PostgresSaver.from_conn_string(conn) as saver:
            saver.setup()
            yield saver
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = settings.home_dir / "checkpoints.db"
        with SqliteSaver.from_conn_string(str(path)) as saver:
            yield saver
