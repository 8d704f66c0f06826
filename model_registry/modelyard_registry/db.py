"""Engine, sessions and migrations.

Schema changes go through Alembic (``migrations/``), never ``create_all``: the same revisions run
on the embedded SQLite file and on PostgreSQL in production.  The LangGraph checkpoint tables are
created in the same step (by the saver's own ``setup()``), never per job: two workers running
``setup()`` at once raced on ``checkpoint_migrations``.  The whole step runs under a lock (a
PostgreSQL advisory lock, a file lock next to a SQLite database), so processes that start
together migrate one after the other and the later ones find nothing to do.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

from .file_lock import file_lock
from .pg_prepared import keep_prepared_statements

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x6D6F64656C  # "model": the advisory lock every migrating process takes
MIGRATION_LOCK_WAIT_S = 600.0
CHECKPOINTS_FILE = "checkpoints.db"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: a commit survives the process being killed (what usage rows need); only an
    # OS crash or power loss can roll back the newest commits. One fsync per checkpoint, not
    # per commit: FULL cost ~20 ms per commit on a busy disk.  Production runs PostgreSQL.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine per URL; SQLite gets WAL + busy timeout so API and workers can share it."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url)
    event.listen(engine, "checkout", _drop_if_closed)
    keep_prepared_statements(engine)
    return engine


def _drop_if_closed(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
    """Hand out no pooled connection the server has closed, without a round trip to ask it.

    ``pool_pre_ping`` sent a query at every checkout: on PostgreSQL a worker checks out a
    connection four times per short job, so a fifth of its round trips were pings (#15).  A
    server that restarts or drops a connection closes its socket, and an idle connection's socket
    then reads as ready (end of file, or the server's farewell message) where a healthy one has
    nothing to read: one ``poll`` with no wait tells them apart.  A connection found closed is
    replaced by the pool (``DisconnectionError``), as after a failed ping.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection is closed")
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("the server closed the connection")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return Path(path) if path and path != ":memory:" else None


def checkpoint_file(url: str) -> Path | None:
    """Where the SQLite checkpointer keeps a deployment's graph checkpoints (next to its db)."""
    db_file = sqlite_file(url)
    return None if db_file is None else db_file.parent / CHECKPOINTS_FILE


def postgres_dsn(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as the plain libpq DSN psycopg (and LangGraph) take."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations across processes: concurrent starts must not race on DDL."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        # Autocommit: a session-level lock needs no transaction, and an open one would block
        # the checkpointer's CREATE INDEX CONCURRENTLY (it waits for every older transaction).
        # Polled, not a blocking pg_advisory_lock: a process blocked inside that statement holds
        # a snapshot too, so processes waiting for the lock would deadlock the one holding it.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            try_lock = text("SELECT pg_try_advisory_lock(:k)")
            deadline = time.monotonic() + MIGRATION_LOCK_WAIT_S
            while not conn.execute(try_lock, {"k": MIGRATION_LOCK_KEY}).scalar():
                if time.monotonic() > deadline:
                    raise TimeoutError("another process has held the migration lock too long")
                time.sleep(0.2)
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
        return
    db_file = sqlite_file(url)
    if db_file is None:
        yield
        return
    db_file.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(db_file.with_name(db_file.name + ".migrate.lock")):
        yield


def setup_checkpoints(url: str) -> None:
    """Create (or upgrade) the LangGraph checkpoint tables for this database, once."""
    if url.startswith(("postgresql", "postgres")):
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(postgres_dsn(url)) as saver:
            saver.setup()
        return
    path = checkpoint_file(url)
    if path is not None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(str(path)) as saver:
            saver.setup()


# Alembic's ``context`` and ``op`` are module-level proxies: two threads of one process migrating
# at once (e.g. a cache watcher thread first touching another database) corrupt each other's run.
_ALEMBIC = threading.RLock()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent, safe to run at every start)."""
    url = engine.url.render_as_string(hide_password=False)
    cfg = alembic_config(url)
    with _ALEMBIC, migration_lock(engine):
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
        setup_checkpoints(url)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` ("base": nothing), under the same locks as migrate."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with _ALEMBIC, migration_lock(engine), engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def migrate_url(url: str) -> None:
    """Migrate with a throw-away engine, for a parent process that forks workers afterwards.

    A pooled connection inherited across ``fork`` would be shared by two processes.
    """
    engine = make_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()


@lru_cache(maxsize=8)
def _migrated_engine(url: str) -> Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine


def get_engine(url: str) -> Engine:
    """The process-wide engine for a URL, migrated on first use."""
    return _migrated_engine(url)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    with Session(get_engine(url), expire_on_commit=False) as session:
        yield session
