"""PostgreSQL plans that outlive a read-only transaction.

psycopg prepares a statement on a connection after its fifth run there, and forgets every
prepared statement of the connection at a ROLLBACK (it cannot tell whether the rollback undid an
object a plan depends on), then sends ``DEALLOCATE ALL``.  SQLAlchemy ends every transaction that
was not committed with a ROLLBACK: each session that only read, and each claim another worker
won.  So on a busy worker nothing stayed prepared, and PostgreSQL parsed and planned every
statement again: 2,040 parses for 300 ``echo`` jobs, 0.5 ms of planning per fair-share query
(statement log, #15).

A transaction that ran only plain reads, and writes that matched no row, changed nothing: COMMIT
ends it exactly as ROLLBACK would, and psycopg keeps its plans.  Anything else (a write that
touched a row, DDL, a savepoint, a statement this module cannot classify, a failed transaction)
still ends in a real ROLLBACK.  Statements are seen through SQLAlchemy's cursor events, which
every statement of the platform passes (none uses a raw DBAPI cursor on PostgreSQL).
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
    rb"REINDEX|COMMENT|SECURITY|IMPORT|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
_IN_TRANSACTION = psycopg.pq.TransactionStatus.INTRANS


@lru_cache(maxsize=1024)
def _only_reads(statement: str | bytes) -> bool:
    """A plain SELECT (or WITH ... SELECT) naming no keyword that could write or lock.

    Cached: the platform runs a few hundred distinct statements, each many times.
    """
    sql = statement.encode() if isinstance(statement, str) else statement
    return _READS.match(sql) is not None and _MAY_WRITE.search(sql) is None


def keep_prepared_statements(engine: Engine) -> None:
    """End ``engine``'s transactions that changed nothing with COMMIT instead of ROLLBACK."""
    wrote: weakref.WeakSet[Any] = weakref.WeakSet()  # DBAPI connections whose transaction wrote

    @event.listens_for(engine, "after_cursor_execute")
    def _note(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        raw = conn.connection.dbapi_connection
        if raw in wrote or (cursor.rowcount == 0 and not executemany):
            return  # already known, or a write that matched no row
        if executemany or not _only_reads(statement):
            wrote.add(raw)

    dialect = engine.dialect
    rollback, commit = dialect.do_rollback, dialect.do_commit

    def do_rollback(connection: Any) -> None:
        raw = getattr(connection, "dbapi_connection", connection)
        if raw in wrote or raw.info.transaction_status != _IN_TRANSACTION:
            wrote.discard(raw)
            rollback(connection)
        else:  # only reads since BEGIN: the same end, without psycopg dropping its plans
            raw.commit()

    def do_commit(connection: Any) -> None:
        wrote.discard(getattr(connection, "dbapi_connection", connection))
        commit(connection)

    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]
    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]


__all__ = ["keep_prepared_statements"]
