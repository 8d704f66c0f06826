"""Durable writes from many request threads, many rows per transaction (group commit).

Each usage row must be committed before its request is answered (a 200 without its ``Call``
would be free work, and a process killed under load must lose none), but one transaction per
request costs a commit (and on PostgreSQL a WAL flush) per request.  ``GroupCommitter.write``
queues a write and returns once the transaction holding it has committed.  Whoever finds no
commit in progress becomes the leader and commits everything queued so far, its own write
included; the writes queued meanwhile go together in the next commit.  A lone request pays no
thread hand-off; under load one commit serves many requests.

The committer has its own engine and connection: it never waits for the request pool, and a
request waiting for a commit never holds a pooled connection the commit needs.  It keeps that
one connection open between commits (commits are one at a time anyway): checking a connection
out of a pool and back costs a reset each time, and on PostgreSQL a ping round trip.  A commit
that fails drops the connection; the next one connects afresh.  On SQLite its commits never run
the log's checkpoint themselves (a thread does, moments later: ``wal_checkpoint``), and each
takes the write lock before its first statement (``sqlite_write_lock``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, event
from sqlmodel import Session

from .db import get_engine, make_engine, sqlite_file
from .sqlite_write_lock import lock_first
from .wal_checkpoint import WalCheckpointer, no_autocheckpoint

log = logging.getLogger(__name__)

Write = Callable[[Session], None]


@dataclass
class _Item:
    write: Write
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self, db_url: str) -> None:
        get_engine(db_url)  # migrated
        self.engine: Engine = make_engine(db_url)
        db_file = sqlite_file(db_url)
        self.checkpointer = WalCheckpointer(db_file) if db_file is not None else None
        if self.checkpointer is not None:
            event.listen(self.engine, "connect", no_autocheckpoint)
            lock_first(self.engine)
        self._pending: list[_Item] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()  # one transaction at a time, on one connection
        self._connection: Connection | None = None
        self.commits = 0
        self.rows = 0

    def write(self, write: Write) -> None:
        """Run ``write`` in a committed transaction; returns once it is durable (or raises)."""
        item = _Item(write)
        with self._queue_lock:
            self._pending.append(item)
        with self._commit_lock:
            if not item.done.is_set():  # no leader took it meanwhile: lead this commit
                with self._queue_lock:
                    batch, self._pending = self._pending, []
                self._commit(batch)
        if item.error is not None:
            raise item.error

    def close(self) -> None:
        with self._commit_lock:
            self._drop()
        self.engine.dispose()
        if self.checkpointer is not None:
            self.checkpointer.close()

    def _connect(self) -> Connection:
        if self._connection is None or self._connection.invalidated:
            self._connection = self.engine.connect()
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception as exc:  # already broken: nothing left to hand back
                log.debug("group commit: closing a failed connection: %s", exc)
            self._connection = None

    def _commit(self, batch: list[_Item]) -> None:
        try:
            with Session(bind=self._connect(), expire_on_commit=False) as session:
                for item in batch:
                    item.write(session)
                session.commit()
            self.commits += 1
            self.rows += len(batch)
        except Exception as exc:
            self._drop()  # whatever broke, the next commit starts on a fresh connection
            log.warning("group commit of %d writes failed (%s); committing one by one",
                        len(batch), exc)
            for item in batch:
                try:
                    with Session(self.engine, expire_on_commit=False) as session:
                        item.write(session)
                        session.commit()
                except Exception as one:
                    item.error = one
        finally:
            if self.checkpointer is not None:
                self.checkpointer.committed()
            for item in batch:
                item.done.set()


__all__ = ["GroupCommitter", "Write"]
