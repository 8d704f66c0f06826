"""PostgreSQL plans that outlive a read-only transaction.

psycopg prepares a statement on a connection after its fifth run there, and forgets every
prepared statement of the connection at a ROLLBACK (it cannot tell whether the rollback undid an
object a plan depends on), then sends ``DEALLOCATE ALL``.  SQLAlchemy ends every transaction that
was not committed with a ROLLBACK: each session that only read, and each claim another worker
won.  So on a busy worker nothing stayed prepared, and PostgreSQL parsed and planned every
statement again: 2,040 parses for 300 ``echo`` jobs, 0.5 ms of planning per fair-share query
(statement log, #15).

A transaction that ran only plain reads, and plain INSERT / UPDATE / DELETE statements that
matched no row, changed nothing: COMMIT ends it exactly as ROLLBACK would, and psycopg keeps its
plans.  Anything else (a write that touched a row, DDL, ``SELECT ... INTO``, a savepoint, a
statement naming ``pg_notify`` or ``set_config``, several statements in one string, anything this
module cannot classify, a failed transaction) still ends in a real ROLLBACK.  A SELECT calling a
user function that writes would be committed: the platform has none.  Statements are seen
through SQLAlchemy's cursor events, which every statement of the platform passes (none uses a
raw DBAPI cursor on PostgreSQL).
"""

from __future__ import annotations

import re
import weakref
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Engine, event

_READS = re.compile(rb"\s*(?:SELECT|WITH)\b", re.IGNORECASE)
_MAY_WRITE = re.compile(
    rb"\b(?:INSERT|UPDATE|DELETE|MERGE|CREATE|DROP|ALTER|TRUNCATE|LOCK|COPY|CALL|DO|GRANT|"
    rb"REVOKE|SET|NOTIFY|LISTEN|PREPARE|DEALLOCATE|DISCARD|REFRESH|VACUUM|ANALYZE|CLUSTER|"
    rb"REINDEX|COMMENT|SECURITY|IMPORT|SAVEPOINT|RELEASE|INTO|pg_notify|set_config|"
    rb"lo_\w+)\b|;", re.IGNORECASE)
_PLAIN_DML = re.compile(rb"\s*(?:INSERT|UPDATE|DELETE)\b[^;]*\Z", re.IGNORECASE)
_IN_TRANSACTION = psycopg.pq.TransactionStatus.INTRANS


def _sql(statement: str | bytes) -> bytes:
    return statement.encode() if isinstance(statement, str) else statement


@lru_cache(maxsize=1024)
def _only_reads(statement: str | bytes) -> bool:
    """One plain SELECT (or WITH ... SELECT) naming nothing that could write, lock or notify.

    Cached: the platform runs a few hundred distinct statements, each many times.
    """
    sql = _sql(statement)
    return _READS.match(sql) is not None and _MAY_WRITE.search(sql) is None


@lru_cache(maxsize=1024)
def _plain_dml(statement: str | bytes) -> bool:
    """One top-level INSERT, UPDATE or DELETE: its row count says whether it changed anything."""
    return _PLAIN_DML.match(_sql(statement)) is not None


def keep_prepared_statements(engine: Engine) -> None:
    """End ``engine``'s transactions that changed nothing with COMMIT instead of ROLLBACK.

    A connection counts as written *before* a statement that may write runs, so an exception
    between the server running it and the driver returning (a signal, a time limit) leaves it
    written: a rollback then is a real one.  Only a plain INSERT, UPDATE or DELETE that was
    the transaction's first write, and matched no row, clears the mark again afterwards.
    """
    wrote: weakref.WeakSet[Any] = weakref.WeakSet()  # DBAPI connections whose transaction wrote
    first: weakref.WeakSet[Any] = weakref.WeakSet()  # marked by the statement now running

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        raw = conn.connection.dbapi_connection
        first.discard(raw)
        if raw in wrote or _only_reads(statement):
            return
        wrote.add(raw)
        if not executemany and _plain_dml(statement):
            first.add(raw)

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        raw = conn.connection.dbapi_connection
        if raw in first:
            first.discard(raw)
            if cursor.rowcount == 0:  # e.g. a claim another worker won: nothing changed
                wrote.discard(raw)

    dialect = engine.dialect
    rollback, commit = dialect.do_rollback, dialect.do_commit

    def do_rollback(connection: Any) -> None:
        raw = getattr(connection, "dbapi_connection", connection)
        first.discard(raw)
        if raw in wrote or raw.info.transaction_status != _IN_TRANSACTION:
            wrote.discard(raw)
            rollback(connection)
        else:  # only reads since BEGIN: the same end, without psycopg dropping its plans
            raw.commit()

    def do_commit(connection: Any) -> None:
        raw = getattr(connection, "dbapi_connection", connection)
        first.discard(raw)
        wrote.discard(raw)
        commit(connection)

    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]
    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]


__all__ = ["keep_prepared_statements"]
